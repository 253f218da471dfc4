# -*- test-case-name: tests.udp.test_listen -*-
"""
Tests of L{penbal.udp.listen}: LISTEN in UDP mode.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.address import SpecError
from penbal.udp.listen import UDPListenSpec, parse_udp_listen


class ParseTests(SynchronousTestCase):
    def test_port_only(self) -> None:
        """A bare port listens on every IPv4 address."""
        spec = parse_udp_listen("5353")
        self.assertEqual(spec, UDPListenSpec("udp:5353", 5353, ""))
        self.assertTrue(spec.wildcard)

    def test_host_and_port(self) -> None:
        """HOST:PORT binds to that address."""
        spec = parse_udp_listen("127.0.0.5:53")
        self.assertEqual((spec.interface, spec.port), ("127.0.0.5", 53))
        self.assertEqual(spec.endpoint, "udp:53:interface=127.0.0.5")
        self.assertFalse(spec.wildcard)

    def test_ipv6_in_brackets(self) -> None:
        """[V6]:PORT binds to an IPv6 address; [::]:PORT to every address."""
        self.assertEqual(parse_udp_listen("[::1]:53").interface, "::1")
        self.assertTrue(parse_udp_listen("[::]:53").wildcard)

    def test_endpoint_form(self) -> None:
        """udp:PORT[:interface=ADDR], with IPv6 escaped or not."""
        self.assertEqual(parse_udp_listen("udp:514").interface, "")
        self.assertEqual(parse_udp_listen("udp:514:interface=127.0.0.1").interface, "127.0.0.1")
        self.assertEqual(parse_udp_listen("udp:514:interface=::1").interface, "::1")
        self.assertEqual(parse_udp_listen(r"udp:514:interface=\:\:1").port, 514)

    def test_localhost(self) -> None:
        """localhost means 127.0.0.1."""
        self.assertEqual(parse_udp_listen("localhost:53").interface, "127.0.0.1")

    def test_mistakes_refused(self) -> None:
        """Each malformed LISTEN is one error naming the value and the expected form."""
        for text in ("", "abc", "70000", "host.example:53", "::1:53", "[::1]53", "udp:x",
                     "udp:53:backlog=5", "tcp:53", "127.0.0.1:0"):
            with self.assertRaises(SpecError, msg=text) as caught:
                parse_udp_listen(text)
            self.assertIn(repr(text), str(caught.exception))
