# -*- test-case-name: tests.udp.test_options -*-
"""
Tests of the UDP options of C{twist penbal} (L{penbal.options} with L{penbal.udp.options}).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.options import Options
from penbal.udp.listen import UDPListenSpec
from penbal.udp.probe import UDPCheckSpec


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class UDPOptionsTests(SynchronousTestCase):
    def test_udp_flag_parses_listen_for_udp(self) -> None:
        """With -U, LISTEN is a UDP address and backends default to its port."""
        options = parse("-U", "127.0.0.1:5353", "127.0.0.2", "127.0.0.3:53")
        self.assertTrue(options["udp"])
        self.assertEqual(options.listen_spec, UDPListenSpec("udp:5353:interface=127.0.0.1",
                                                             5353, "127.0.0.1"))
        self.assertEqual([s.port for s in options.backend_specs], [5353, 53])

    def test_defaults(self) -> None:
        """Sessions idle out after 30 s; no probe unless asked; 2 s probe interval."""
        options = parse("--udp", "53", "127.0.0.2")
        self.assertEqual(options["udp-idle"], 30.0)
        self.assertIsNone(options["udp-check"])
        self.assertEqual(options["udp-check-interval"], 2.0)

    def test_check_parsed(self) -> None:
        """--udp-check becomes a check spec."""
        options = parse("--udp", "--udp-check", "0102:03", "--udp-idle", "5", "53", "127.0.0.2")
        self.assertEqual(options["udp-check"], UDPCheckSpec(b"\x01\x02", b"\x03"))
        self.assertEqual(options["udp-idle"], 5.0)

    def test_endpoint_listen(self) -> None:
        """udp:PORT:interface=ADDR is accepted in UDP mode."""
        options = parse("--udp", "udp:5353:interface=::1", "[::1]:53")
        assert isinstance(options.listen_spec, UDPListenSpec)
        self.assertEqual(options.listen_spec.interface, "::1")

    def test_mistakes_are_one_line(self) -> None:
        """Bad UDP options exit with one line naming the problem."""
        cases = [
            (["--udp", "tcp:53", "127.0.0.2"], "tcp:53"),
            (["--udp", "--udp-check", "xyz", "53", "127.0.0.2"], "xyz"),
            (["--udp-check", "0102", "53", "127.0.0.2"], "needs --udp"),
            (["--udp", "--udp-idle", "0", "53", "127.0.0.2"], "--udp-idle"),
        ]
        for args, expected in cases:
            with self.assertRaises(SystemExit, msg=args) as caught:
                parse(*args)
            message = str(caught.exception.code)
            self.assertTrue(message.startswith("penbal: error: "), message)
            self.assertIn(expected, message)
            self.assertNotIn("\n", message)
