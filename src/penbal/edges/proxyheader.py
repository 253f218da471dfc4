# -*- test-case-name: tests.edges.test_proxyheader -*-
"""
The PROXY protocol header (HAProxy's, versions 1 and 2) that tells a backend who the client is.

It is written once, first, on each connection to a backend, so that a backend that accepts it
(MariaDB with C{proxy_protocol_networks}, HAProxy, nginx) sees the client's address instead of
the balancer's.
"""

from __future__ import annotations

import ipaddress
import struct

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_PROXY = 0x21  # version 2, command PROXY
_TCP4 = 0x11
_TCP6 = 0x21
_UNSPEC = 0x00

PROXY_VERSIONS = ("v1", "v2")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


def _same_family(source: Address, destination: Address) -> tuple[Address, Address]:
    """Both addresses in one family: IPv4 ones become IPv4-mapped IPv6 when they differ."""
    if source.version == destination.version:
        return source, destination
    if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped is not None:
        source = source.ipv4_mapped
    if isinstance(destination, ipaddress.IPv6Address) and destination.ipv4_mapped is not None:
        destination = destination.ipv4_mapped
    if source.version == destination.version:
        return source, destination

    def mapped(a: Address) -> Address:
        return ipaddress.IPv6Address(f"::ffff:{a}") if a.version == 4 else a

    return mapped(source), mapped(destination)


def proxy_header(
    version: str, source: tuple[str, int], destination: tuple[str, int]
) -> bytes:
    """
    The header for a connection from C{source} (the client) to C{destination} (the address
    the client connected to), each C{(host, port)}.

    A client that is not an IP address (a unix socket) gives C{PROXY UNKNOWN} in version 1
    and an address-less header (family C{UNSPEC}) in version 2: the backend then uses the
    balancer's own address.
    """
    if version not in PROXY_VERSIONS:
        raise ValueError(f"unknown PROXY protocol version {version!r}: expected v1 or v2")
    src, dst = _ip(source[0]), _ip(destination[0])
    if src is None or dst is None:
        if version == "v1":
            return b"PROXY UNKNOWN\r\n"
        return V2_SIGNATURE + struct.pack("!BBH", _V2_PROXY, _UNSPEC, 0)
    src, dst = _same_family(src, dst)
    sport, dport = source[1], destination[1]
    if version == "v1":
        family = "TCP4" if src.version == 4 else "TCP6"
        return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode("ascii")
    body = src.packed + dst.packed + struct.pack("!HH", sport, dport)
    family_byte = _TCP4 if src.version == 4 else _TCP6
    return V2_SIGNATURE + struct.pack("!BBH", _V2_PROXY, family_byte, len(body)) + body
