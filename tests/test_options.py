# -*- test-case-name: tests.test_options -*-
"""
Tests of the core options of C{twist penbal} (L{penbal.options}); each feature's own options are
tested beside it (policies, udp, health, control, edges).
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from penbal.options import Options, first_byte_timeout, queue_timeout


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class CoreOptionsTests(SynchronousTestCase):
    def test_pen_defaults(self) -> None:
        """Pen's defaults: 3 s connect timeout, 30 s blacklist, 500 connections."""
        options = parse("3306", "127.0.0.2")
        self.assertEqual((options["timeout"], options["blacklist"], options["max-connections"]),
                         (3.0, 30.0, 500))

    def test_bad_number_one_line(self) -> None:
        """A number out of range exits with one line naming the option and what is expected."""
        with self.assertRaises(SystemExit) as caught:
            parse("-t", "0", "3306", "127.0.0.2")
        self.assertIn("expected a number >= 0.001 for --timeout, got '0'", str(caught.exception))


class RelayPathOptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """The lean path with 1 MiB reads unless asked otherwise."""
        options = parse("3306", "127.0.0.2")
        self.assertEqual((options["relay-path"], options["read-size"]), ("lean", 1 << 20))

    def test_plain(self) -> None:
        """--relay-path twisted is accepted (plain and write-through are its older names),
        with any read size from 1 KiB."""
        options = parse("--relay-path", "twisted", "--read-size", "4096", "3306", "127.0.0.2")
        self.assertEqual((options["relay-path"], options["read-size"]), ("twisted", 4096))
        for old in ("plain", "write-through"):
            self.assertEqual(parse("--relay-path", old, "3306", "h")["relay-path"], "twisted")

    def test_unknown_path_refused(self) -> None:
        """An unknown path is refused naming the choices."""
        with self.assertRaises(SystemExit) as caught:
            parse("--relay-path", "fast", "3306", "127.0.0.2")
        message = str(caught.exception)
        self.assertIn("expected one of lean|twisted for --relay-path, got 'fast'",
                      message)
        self.assertNotIn("\n", message)

    def test_tiny_read_size_refused(self) -> None:
        """A read size under 1 KiB is refused."""
        with self.assertRaises(SystemExit) as caught:
            parse("--read-size", "10", "3306", "127.0.0.2")
        self.assertIn("--read-size", str(caught.exception))


class FirstByteTimeoutTests(SynchronousTestCase):
    """--first-byte-timeout and its default."""

    def setUp(self) -> None:
        # --check galera needs a login; the environment is one place it may come from.
        self.patch(os, "environ", {**os.environ, "PENBAL_CHECK_USER": "check"})

    def test_off_without_galera(self) -> None:
        """Without --check galera the backend's protocol is unknown: off."""
        self.assertEqual(first_byte_timeout(parse("3306", "127.0.0.1:3307")), 0.0)

    def test_connect_timeout_with_galera(self) -> None:
        """With --check galera (MySQL greets first) it is the connect timeout."""
        options = parse("--check", "galera", "-t", "2.5", "3306", "127.0.0.1:3307")
        self.assertEqual(first_byte_timeout(options), 2.5)

    def test_given_wins(self) -> None:
        """An explicit value wins, 0 included."""
        options = parse("--check", "galera", "--first-byte-timeout", "0", "3306", "127.0.0.1:3307")
        self.assertEqual(first_byte_timeout(options), 0.0)

    def test_negative_refused(self) -> None:
        """A negative value is a one-line usage error."""
        with self.assertRaises(SystemExit) as caught:
            parse("--first-byte-timeout", "-1", "3306", "127.0.0.1:3307")
        self.assertIn("--first-byte-timeout", str(caught.exception))


class QueueTimeoutTests(SynchronousTestCase):
    """--queue-timeout, its default, and --queue-max."""

    def setUp(self) -> None:
        self.patch(os, "environ", {**os.environ, "PENBAL_CHECK_USER": "check"})

    def test_off_without_galera(self) -> None:
        """Without --check galera nobody is held."""
        self.assertEqual(queue_timeout(parse("3306", "127.0.0.1:3307")), 0.0)

    def test_two_seconds_with_galera(self) -> None:
        """With --check galera clients wait up to 2 s for a fit node."""
        self.assertEqual(queue_timeout(parse("--check", "galera", "3306", "127.0.0.1:3307")), 2.0)

    def test_given_wins(self) -> None:
        """An explicit value wins, 0 included."""
        options = parse("--check", "galera", "--queue-timeout", "0", "3306", "127.0.0.1:3307")
        self.assertEqual(queue_timeout(options), 0.0)
        self.assertEqual(queue_timeout(parse("--queue-timeout", "5", "3306", "h")), 5.0)

    def test_bad_values_refused(self) -> None:
        """A negative timeout or a queue of none is refused, naming the option."""
        for args in (("--queue-timeout", "-1"), ("--queue-max", "0"), ("--queue-max", "x")):
            with self.assertRaises(SystemExit) as caught:
                parse(*args, "3306", "127.0.0.2")
            self.assertIn(args[0], str(caught.exception))
