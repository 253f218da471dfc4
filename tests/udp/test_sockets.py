# -*- test-case-name: tests.udp.test_sockets -*-
"""
Tests of L{penbal.udp.sockets} on real loopback sockets: replies from the address the client
used, ICMP port unreachable noticed, the largest datagrams passed whole.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from penbal.udp.sockets import (
    MAX_DATAGRAM,
    BackendUnreachableError,
    FrontSocket,
    UpstreamSocket,
)
from tests.udp.loopback import Client, EchoBackend, free_udp_port, reactor, wait_until


class Receiver:
    """Records what an upstream socket reports."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.unreachable_why: list[str] = []

    def datagram(self, data: bytes) -> None:
        self.datagrams.append(data)

    def unreachable(self, why: str) -> None:
        self.unreachable_why.append(why)


class FrontSocketTests(TestCase):
    def front(self, interface: str) -> tuple[FrontSocket, list[tuple[bytes, Any, str | None]]]:
        got: list[tuple[bytes, Any, str | None]] = []
        front = FrontSocket(reactor, interface, 0, lambda d, a, local: got.append((d, a, local)))
        front.start_reading()
        self.addCleanup(front.close)
        return front, got

    def client(self, host: str, connect: tuple[str, int]) -> Client:
        client = Client(host, connect=connect)
        self.addCleanup(client.close)
        return client

    async def _reply_from(self, interface: str, client_host: str, to_host: str) -> None:
        front, got = self.front(interface)
        port = front.address()[1]
        client = self.client(client_host, (to_host, port))
        client.send(b"hello")
        await wait_until(lambda: bool(got), 5, "the front socket to receive")
        data, addr, local = got[0]
        self.assertEqual(data, b"hello")
        self.assertTrue(front.send(b"reply", addr, local))
        await wait_until(lambda: bool(client.received), 5, "the connected client's reply")
        self.assertEqual(client.received, [b"reply"])

    def test_wildcard_replies_from_address_used(self) -> Deferred[None]:
        """Bound to 0.0.0.0, a reply leaves from the address the client sent to."""
        return Deferred.fromCoroutine(self._reply_from("", "127.0.0.5", "127.0.0.2"))

    def test_wildcard_reports_local_address(self) -> Deferred[None]:
        """Bound to every address, the socket reports where each datagram was sent."""
        front, got = self.front("")
        client = self.client("127.0.0.5", ("127.0.0.3", front.address()[1]))
        client.send(b"x")
        d = wait_until(lambda: bool(got), 5, "a datagram")
        d.addCallback(lambda _: self.assertEqual(got[0][2], "127.0.0.3"))
        return d

    def test_dual_stack_wildcard(self) -> Deferred[None]:
        """Bound to ::, IPv4 clients are served, from the IPv4 address they used."""
        return Deferred.fromCoroutine(self._reply_from("::", "127.0.0.6", "127.0.0.4"))

    def test_ipv6(self) -> Deferred[None]:
        """An IPv6 front socket serves IPv6 clients."""
        return Deferred.fromCoroutine(self._reply_from("::1", "::1", "::1"))

    def test_specific_address(self) -> Deferred[None]:
        """Bound to one address, no ancillary data is needed."""
        return Deferred.fromCoroutine(self._reply_from("127.0.0.7", "127.0.0.1", "127.0.0.7"))

    def test_taken_port_refused(self) -> None:
        """Binding a port in use raises OSError at once."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            self.assertRaises(OSError, FrontSocket, reactor, "127.0.0.1", port, print)


class UpstreamSocketTests(TestCase):
    def upstream(self, host: str, port: int) -> tuple[UpstreamSocket, Receiver]:
        receiver = Receiver()
        upstream = UpstreamSocket(reactor, host, port, receiver)
        self.addCleanup(upstream.close)
        return upstream, receiver

    def test_closed_port_reported_unreachable(self) -> Deferred[None]:
        """A datagram to a port nobody listens on is reported as ICMP port unreachable."""
        upstream, receiver = self.upstream("127.0.0.1", free_udp_port())
        self.assertTrue(upstream.send(b"anyone?"))
        d = wait_until(lambda: bool(receiver.unreachable_why), 5, "the ICMP error")
        d.addCallback(lambda _: self.assertEqual(receiver.unreachable_why,
                                                 ["ICMP port unreachable"]))
        return d

    def test_socket_keeps_working_after_error(self) -> Deferred[None]:
        """After an ICMP error the socket still sends and the next error is reported too."""
        upstream, receiver = self.upstream("127.0.0.1", free_udp_port())
        upstream.send(b"1")

        async def run() -> None:
            await wait_until(lambda: len(receiver.unreachable_why) == 1, 5, "first error")
            try:
                upstream.send(b"2")
            except BackendUnreachableError:
                return
            await wait_until(lambda: len(receiver.unreachable_why) == 2, 5, "second error")

        return Deferred.fromCoroutine(run())

    def test_largest_datagram_round_trip(self) -> Deferred[None]:
        """A 65,507-byte datagram goes out and comes back whole."""
        backend = EchoBackend("a")
        self.addCleanup(backend.stop)
        upstream, receiver = self.upstream("127.0.0.1", backend.number)
        payload = bytes(range(256)) * 255 + b"x" * 227
        self.assertEqual(len(payload), 65_507)
        upstream.send(payload)
        d = wait_until(lambda: bool(receiver.datagrams), 5, "the echo")
        d.addCallback(lambda _: self.assertEqual(receiver.datagrams, [payload]))
        return d

    def test_ipv6_upstream(self) -> Deferred[None]:
        """An IPv6 backend gets an IPv6 socket."""
        backend = EchoBackend("six", host="::1")
        self.addCleanup(backend.stop)
        upstream, receiver = self.upstream("::1", backend.number)
        upstream.send(b"q")
        d = wait_until(lambda: bool(receiver.datagrams), 5, "the echo")
        d.addCallback(lambda _: self.assertEqual(receiver.datagrams, [b"six:q"]))
        return d

    def test_max_datagram_constant(self) -> None:
        """Reads take up to 65,535 bytes, more than any UDP payload over IPv4."""
        self.assertGreaterEqual(MAX_DATAGRAM, 65_507)
