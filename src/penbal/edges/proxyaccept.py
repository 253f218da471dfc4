# -*- test-case-name: tests.edges.test_proxyaccept -*-
"""
C{--accept-proxy}: read the PROXY header (v1 or v2) that a balancer in front writes, and treat
the client it names as the client, for policies, ACLs, logs and C{--send-proxy} alike.

Twisted's C{haproxy:} endpoint wrapper parses the same header, but starts the wrapped protocol
before the header has arrived (so the balancer would choose a backend and check its ACL with
the front balancer's address) and drops a header split across reads.  Here the relay's front
leg is created only once the whole header is in, for the address in it.  Only senders inside
C{--proxy-networks} may send a header; a missing, malformed or late header closes the
connection.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.edges.acl import AccessList
from penbal.edges.proxyheader import V2_SIGNATURE
from penbal.interfaces import ClientInfo

log = Logger()

V1_MAX = 107
V2_MAX_BODY = 2048


class ProxyHeaderError(ValueError):
    """The bytes are not a valid PROXY header."""


@dataclass(frozen=True)
class ProxiedConnection:
    """What a header said: the client (None for LOCAL/UNKNOWN) and the bytes after it."""

    client: ClientInfo | None
    rest: bytes


def _address(raw: bytes, version: int) -> str:
    try:
        text = raw.decode("ascii")
        parsed = ipaddress.ip_address(text)
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError(f"invalid address {raw[:45]!r}") from None
    if parsed.version != version:
        raise ProxyHeaderError(f"invalid IPv{version} address {text!r}")
    return str(parsed)


def _port(raw: bytes) -> int:
    if not raw.isdigit() or len(raw) > 5 or int(raw) > 65535 or raw != b"%d" % int(raw):
        raise ProxyHeaderError(f"invalid port {raw[:8]!r}")
    return int(raw)


def _parse_v1(data: bytes) -> ProxiedConnection | None:
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("v1 header without CRLF within 107 bytes")
        return None
    line, rest = data[:end], data[end + 2 :]
    words = line.split(b" ")
    if words[:2] == [b"PROXY", b"UNKNOWN"]:
        return ProxiedConnection(None, rest)
    if len(words) != 6 or words[0] != b"PROXY" or words[1] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError(f"invalid v1 header {line[:60]!r}")
    version = 4 if words[1] == b"TCP4" else 6
    host = _address(words[2], version)
    _address(words[3], version)
    port = _port(words[4])
    _port(words[5])
    return ProxiedConnection(ClientInfo(host, port), rest)


def _parse_v2(data: bytes) -> ProxiedConnection | None:
    if len(data) < 16:
        return None
    command, family, length = struct.unpack("!BBH", data[12:16])
    if command >> 4 != 2 or command & 0x0F > 1:
        raise ProxyHeaderError(f"invalid v2 version/command byte 0x{command:02x}")
    if length > V2_MAX_BODY:
        raise ProxyHeaderError(f"v2 header body of {length} bytes is over {V2_MAX_BODY}")
    if len(data) < 16 + length:
        return None
    body, rest = data[16 : 16 + length], data[16 + length :]
    if command & 0x0F == 0:  # LOCAL: the sender's own connection (a health check)
        return ProxiedConnection(None, rest)
    address_family = family >> 4
    if address_family == 1 and length >= 12:
        source = str(ipaddress.IPv4Address(body[0:4]))
        (port,) = struct.unpack("!H", body[8:10])
    elif address_family == 2 and length >= 36:
        source = str(ipaddress.IPv6Address(body[0:16]))
        (port,) = struct.unpack("!H", body[32:34])
    elif address_family in (0, 3):  # UNSPEC or unix: no IP address to use
        return ProxiedConnection(None, rest)
    else:
        raise ProxyHeaderError(f"invalid v2 address family byte 0x{family:02x} for {length}")
    return ProxiedConnection(ClientInfo(source, port), rest)


def parse_proxy_header(data: bytes) -> ProxiedConnection | None:
    """
    Parse a PROXY header at the start of C{data}: the result, or None if more bytes are needed;
    L{ProxyHeaderError} if it cannot be one.
    """
    if data[:12] == V2_SIGNATURE[: len(data[:12])] and not data.startswith(b"PROXY"):
        return _parse_v2(data) if len(data) >= 12 else None
    if b"PROXY "[: len(data)] == data[:6]:
        return _parse_v1(data)
    raise ProxyHeaderError("no PROXY header")


@implementer(IHalfCloseableProtocol)
class ProxyHeaderReceiver(Protocol):
    """Reads the header, then hands the connection over to the protocol built for its client."""

    def __init__(
        self,
        build: Callable[[ClientInfo], Protocol],
        peer: ClientInfo,
        trusted: AccessList,
        clock: IReactorTime,
        timeout: float,
        arriving: Callable[[int], None] | None = None,
    ) -> None:
        self._build = build
        #: Told 1 when the client is accepted and -1 when its leg starts or it closes first:
        #: it counts toward --max-connections while its header is read.
        self._arriving = arriving
        self._counted = False
        self._peer = peer
        self._trusted = trusted
        self._clock = clock
        self._timeout = timeout
        self._buffer = b""
        self._timer: IDelayedCall | None = None
        self.inner: Protocol | None = None

    def connectionMade(self) -> None:
        if self._arriving is not None:
            self._counted = True
            self._arriving(1)
        if not self._trusted.permits(self._peer.host):
            self._refuse(f"{self._peer.host} is not in --proxy-networks")
            return
        self._timer = self._clock.callLater(self._timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._timer = None
        self._refuse(f"no PROXY header within {self._timeout:g}s")

    def _refuse(self, why: str) -> None:
        log.warn(
            "closing connection from {peer}: {why}",
            peer=f"{self._peer.host}:{self._peer.port}",
            why=why,
        )
        transport: Any = self.transport
        transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        inner = self.inner
        if inner is not None:
            inner.dataReceived(data)
            return
        self._buffer += data
        try:
            parsed = parse_proxy_header(self._buffer)
        except ProxyHeaderError as e:
            self._buffer = b""
            self._stop_timer()
            self._refuse(f"bad PROXY header: {e}")
            return
        if parsed is None:
            return
        self._stop_timer()
        self._buffer = b""
        self._uncount()  # the leg counts from now on
        inner = self.inner = self._build(parsed.client or self._peer)
        inner.makeConnection(self.transport)
        if parsed.rest:
            inner.dataReceived(parsed.rest)

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            assert self._arriving is not None
            self._arriving(-1)

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def readConnectionLost(self) -> None:
        inner = self.inner
        if IHalfCloseableProtocol.providedBy(inner):
            inner.readConnectionLost()
        else:
            transport: Any = self.transport
            transport.loseConnection()

    def writeConnectionLost(self) -> None:
        inner = self.inner
        if IHalfCloseableProtocol.providedBy(inner):
            inner.writeConnectionLost()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._stop_timer()
        self._uncount()
        if self.inner is not None:
            self.inner.connectionLost(reason)
