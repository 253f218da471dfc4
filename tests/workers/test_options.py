# -*- test-case-name: tests.workers.test_options -*-
"""
Tests of C{--workers} and C{--worker-fds} on the command line.
"""

from __future__ import annotations

import socket

from twisted.trial.unittest import SynchronousTestCase

from penbal.address import SpecError
from penbal.options import Options
from penbal.workers.options import parse_workers, tcp_listen_address
from penbal.workers.sockets import TCPListenAddress


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class WorkersOptionTests(SynchronousTestCase):
    def test_default_one(self) -> None:
        """Without --workers penbal is one process: no address for workers."""
        options = parse("127.0.0.1:3306", "127.0.0.2")
        self.assertEqual((options["workers"], options.worker_address), (1, None))

    def test_count_and_address(self) -> None:
        """--workers 2 on [HOST:]PORT: the main process binds HOST:PORT."""
        options = parse("--workers", "2", "127.0.0.1:3306", "127.0.0.2")
        self.assertEqual(options["workers"], 2)
        self.assertEqual(options.worker_address,
                         TCPListenAddress(socket.AF_INET, "127.0.0.1", 3306, 1024))

    def test_arguments_kept(self) -> None:
        """The arguments as given are kept, for the workers' command line."""
        options = parse("--workers", "2", "127.0.0.1:3306", "127.0.0.2")
        self.assertEqual(options.arguments, ["--workers", "2", "127.0.0.1:3306", "127.0.0.2"])

    def test_auto(self) -> None:
        """auto is the number of CPUs (at least 1)."""
        self.assertEqual(parse_workers("auto", lambda: 8), 8)
        self.assertEqual(parse_workers("auto", lambda: None), 1)

    def test_bad_count(self) -> None:
        """0, negative or not a number: one line saying what is expected."""
        for text in ("0", "-1", "two", "1.5", ""):
            with self.assertRaises(SystemExit) as caught:
                parse("--workers", text, "127.0.0.1:3306", "127.0.0.2")
            self.assertEqual(str(caught.exception.code),
                             f"penbal: error: invalid --workers {text!r}: expected a number of "
                             "worker processes >= 1, or auto (one per CPU)")

    def test_udp_refused(self) -> None:
        """UDP mode stays one process."""
        with self.assertRaises(SystemExit) as caught:
            parse("-U", "--workers", "2", "127.0.0.1:53", "127.0.0.2")
        self.assertIn("UDP mode (-U) runs in one process", str(caught.exception.code))

    def test_udp_one_worker_allowed(self) -> None:
        """--workers 1 is today's single process, with -U too."""
        self.assertEqual(parse("-U", "--workers", "1", "127.0.0.1:53", "127.0.0.2")["workers"], 1)

    def test_a_worker_always_fails_back(self) -> None:
        """--no-failback reaches a single process's policy; a worker's fails back (each
        worker would remember its own writers, and the spare none)."""
        from penbal.tap import policy_settings

        base = ("--policy", "galera-writer", "--check", "tcp", "--no-failback",
                "127.0.0.1:3306", "127.0.0.2", "127.0.0.3")
        self.assertEqual(policy_settings(parse(*base)), {"failback": False, "checked": True})
        for fds in ("3,4", "-,4"):
            self.assertEqual(policy_settings(parse("--worker-fds", fds, *base)),
                             {"failback": True, "checked": True})
        self.assertTrue(policy_settings(parse("127.0.0.1:3306", "127.0.0.2"))["failback"])

    def test_worker_fds(self) -> None:
        """A worker's descriptors; - for a spare worker's socket."""
        self.assertEqual(parse("--worker-fds", "3,4", "127.0.0.1:3306", "127.0.0.2").worker_fds,
                         (3, 4))
        self.assertEqual(parse("--worker-fds", "-,4", "127.0.0.1:3306", "127.0.0.2").worker_fds,
                         (None, 4))
        with self.assertRaises(SystemExit):
            parse("--worker-fds", "x", "127.0.0.1:3306", "127.0.0.2")


class ListenAddressTests(SynchronousTestCase):
    def test_forms(self) -> None:
        """tcp: and tcp6: with interface=, port= and backlog=; Twisted's escapes."""
        self.assertEqual(tcp_listen_address("tcp:3306"),
                         TCPListenAddress(socket.AF_INET, "0.0.0.0", 3306, 1024))
        self.assertEqual(tcp_listen_address("tcp:port=5:interface=127.0.0.1:backlog=7"),
                         TCPListenAddress(socket.AF_INET, "127.0.0.1", 5, 7))
        self.assertEqual(tcp_listen_address(r"tcp6:3306:interface=\:\:1"),
                         TCPListenAddress(socket.AF_INET6, "::1", 3306, 1024))

    def test_refused(self) -> None:
        """Anything the main process cannot bind itself is refused in one line."""
        for text in ("unix:/tmp/x", "ssl:443", "tcp:", "tcp:99999", "tcp:1:interface=host",
                     "tcp:1:reuse=1", r"tcp:1:interface=\:\:1"):
            with self.assertRaises(SpecError) as caught:
                tcp_listen_address(text)
            self.assertIn("--workers needs a plain TCP listen address", str(caught.exception))
