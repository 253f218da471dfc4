# -*- test-case-name: tests.edges.test_proxyheader -*-
"""
Tests of the PROXY header builder, checked byte for byte and against Twisted's own parsers.
"""

from __future__ import annotations

import ipaddress

from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.proxyheader import V2_SIGNATURE, proxy_header


class V1Tests(SynchronousTestCase):
    """Version 1, the text form."""

    def test_tcp4(self) -> None:
        """An IPv4 client gives a TCP4 line."""
        self.assertEqual(
            proxy_header("v1", ("127.0.0.5", 40000), ("127.0.0.1", 3306)),
            b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 3306\r\n",
        )

    def test_tcp6(self) -> None:
        """An IPv6 client gives a TCP6 line."""
        self.assertEqual(
            proxy_header("v1", ("::1", 5), ("::1", 6)), b"PROXY TCP6 ::1 ::1 5 6\r\n"
        )

    def test_unix_client(self) -> None:
        """A client with no IP address gives PROXY UNKNOWN."""
        self.assertEqual(proxy_header("v1", ("unix", 0), ("", 0)), b"PROXY UNKNOWN\r\n")

    def test_mixed_families(self) -> None:
        """An IPv4 client on an IPv6 socket is written as IPv4-mapped IPv6."""
        header = proxy_header("v1", ("127.0.0.5", 1), ("::1", 2))
        self.assertEqual(header, b"PROXY TCP6 ::ffff:7f00:5 ::1 1 2\r\n")

    def test_mapped_both_ways_become_ipv4(self) -> None:
        """::ffff:a.b.c.d with an IPv4 destination is written as TCP4."""
        header = proxy_header("v1", ("::ffff:127.0.0.5", 1), ("127.0.0.1", 2))
        self.assertEqual(header, b"PROXY TCP4 127.0.0.5 127.0.0.1 1 2\r\n")

    def test_twisted_parses_it(self) -> None:
        """Twisted's parser reads back the client's address."""
        info, _ = V1Parser().feed(proxy_header("v1", ("127.0.0.9", 1234), ("127.0.0.1", 80)))
        assert info is not None and info.source is not None
        self.assertEqual((info.source.host, info.source.port), ("127.0.0.9", 1234))  # type: ignore[attr-defined]


class V2Tests(SynchronousTestCase):
    """Version 2, the binary form."""

    def test_tcp4_bytes(self) -> None:
        """An IPv4 header: signature, PROXY command, TCP4, 12 address bytes."""
        header = proxy_header("v2", ("127.0.0.5", 0x1234), ("127.0.0.1", 3306))
        self.assertEqual(
            header,
            V2_SIGNATURE + b"\x21\x11\x00\x0c" + bytes([127, 0, 0, 5, 127, 0, 0, 1])
            + b"\x12\x34\x0c\xea",
        )

    def test_tcp6_length(self) -> None:
        """An IPv6 header carries 36 address bytes."""
        header = proxy_header("v2", ("::1", 1), ("::1", 2))
        self.assertEqual(header[12:16], b"\x21\x21\x00\x24")
        self.assertEqual(len(header), 16 + 36)

    def test_unspec(self) -> None:
        """A unix client gives an address-less header."""
        self.assertEqual(proxy_header("v2", ("unix", 0), ("", 0)),
                         V2_SIGNATURE + b"\x21\x00\x00\x00")

    def test_twisted_parses_it(self) -> None:
        """Twisted's parser reads back the client's address, v4 and v6."""
        for host in ("127.0.0.9", "2001:db8::7"):
            dest = "127.0.0.1" if ":" not in host else "::1"
            info, _ = V2Parser().feed(proxy_header("v2", (host, 4321), (dest, 80)))
            assert info is not None and info.source is not None
            source = info.source
            self.assertEqual(source.port, 4321)  # type: ignore[attr-defined]
            self.assertEqual(str(ipaddress.ip_address(source.host)), host)  # type: ignore[attr-defined]

    def test_unknown_version(self) -> None:
        """Only v1 and v2 exist."""
        self.assertRaises(ValueError, proxy_header, "v3", ("127.0.0.1", 1), ("127.0.0.1", 2))
