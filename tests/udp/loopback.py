# -*- test-case-name: tests.integration.test_udp_relay -*-
"""
Real UDP peers on loopback for the UDP balancer's tests, on the running reactor: echo
backends, clients, and waiting for a condition with a deadline.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.protocol import DatagramProtocol

reactor: Any = _reactor

BIG = 60_000
"""Echo backends return datagrams larger than this unchanged (no room for their name)."""


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> Deferred[None]:
    """Fire once C{condition()} is true (checked every 10 ms); fail after C{timeout} seconds."""
    done: Deferred[None] = Deferred()
    deadline = reactor.seconds() + timeout

    def check() -> None:
        if condition():
            done.callback(None)
        elif reactor.seconds() > deadline:
            done.errback(AssertionError(f"timed out after {timeout}s waiting for {what}"))
        else:
            reactor.callLater(0.01, check)

    check()
    return done


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EchoBackend(DatagramProtocol):
    """Answers each datagram with C{NAME:} and the datagram (big ones unchanged)."""

    noisy = False

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.name = name.encode()
        self.host = host
        self.received: list[bytes] = []
        self.peers: set[tuple[str, int]] = set()
        self.silent = False
        self.port: Any = reactor.listenUDP(0, self, interface=host, maxPacketSize=65535)
        self.number: int = self.port.getHost().port

    @property
    def address(self) -> str:
        """The backend spec for penbal."""
        return f"[{self.host}]:{self.number}" if ":" in self.host else f"{self.host}:{self.number}"

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append(datagram)
        self.peers.add(addr[:2])
        if self.silent:
            return
        reply = datagram if len(datagram) > BIG else self.name + b":" + datagram
        self.transport.write(reply, addr)  # type: ignore[union-attr]

    def stop(self) -> Deferred[None]:
        """Stop listening: later datagrams to its port get ICMP port unreachable."""
        return maybeDeferred(self.port.stopListening)


class Client(DatagramProtocol):
    """A client socket on a chosen loopback address, optionally connected to the balancer."""

    noisy = False

    def __init__(self, host: str = "127.0.0.1", connect: tuple[str, int] | None = None) -> None:
        self.received: list[bytes] = []
        self.senders: set[tuple[str, int]] = set()
        self.port: Any = reactor.listenUDP(0, self, interface=host, maxPacketSize=65535)
        self.address: tuple[str, int] = (host, self.port.getHost().port)
        if connect is not None:
            self.port.connect(*connect)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append(datagram)
        self.senders.add(addr[:2])

    def send(self, data: bytes, to: tuple[str, int] | None = None) -> None:
        self.port.write(data, to)

    def close(self) -> Deferred[None]:
        return maybeDeferred(self.port.stopListening)
