# -*- test-case-name: tests.workers.test_sockets -*-
"""
Tests of the listening sockets of C{--workers}: one SO_REUSEPORT group, steered by client
address (real sockets on loopback).
"""

from __future__ import annotations

import socket
import struct

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.process import wait_for
from penbal.workers.sockets import (
    SKF_NET_OFF,
    TCPListenAddress,
    attach_steering,
    detach_steering,
    listening_group,
    steering_program,
)


class ProgramTests(SynchronousTestCase):
    def test_instructions(self) -> None:
        """Load the source address word, modulo the group size, return it."""
        code = steering_program(socket.AF_INET, 3)
        instructions = [struct.unpack("HBBI", code[at:at + 8]) for at in range(0, len(code), 8)]
        self.assertEqual(instructions, [(0x20, 0, 0, (SKF_NET_OFF + 12) & 0xFFFFFFFF),
                                        (0x94, 0, 0, 3), (0x16, 0, 0, 0)])

    def test_ipv6_last_word(self) -> None:
        """For IPv6 the last word of the 16-byte source address (offset 8) is hashed."""
        code = steering_program(socket.AF_INET6, 2)
        self.assertEqual(struct.unpack("HBBI", code[:8])[3], (SKF_NET_OFF + 20) & 0xFFFFFFFF)


def accepted_by(group: list[socket.socket], source: str, port: int, family: int) -> int:
    """Connect from C{source}; the place in C{group} of the socket that got the client."""
    with socket.socket(family) as client:
        client.bind((source, 0))
        client.connect((group[0].getsockname()[0], port))
        found: list[int] = []

        def accept() -> bool:
            for place, listening in enumerate(group):
                try:
                    sock, _ = listening.accept()
                except BlockingIOError:
                    continue
                sock.close()
                found.append(place)
            return bool(found)

        wait_for(accept, 5, f"a socket of the group to accept {source}")
        return found[0]


class GroupTests(SynchronousTestCase):
    def group(self, address: TCPListenAddress, count: int,
              steered: bool = True) -> list[socket.socket]:
        group = listening_group(address, count, steered)
        for sock in group:
            self.addCleanup(sock.close)
        return group

    def test_steered_by_address(self) -> None:
        """Every IPv4 client address always reaches the same socket; both are used."""
        group = self.group(TCPListenAddress(socket.AF_INET, "127.0.0.1", 0), 2)
        port = group[0].getsockname()[1]
        self.assertEqual(group[1].getsockname()[1], port)
        places: dict[str, int] = {}
        for _ in range(3):
            for last in range(2, 10):
                source = f"127.0.0.{last}"
                place = accepted_by(group, source, port, socket.AF_INET)
                self.assertEqual(places.setdefault(source, place), place)
                self.assertEqual(place, last % 2)
        self.assertEqual(set(places.values()), {0, 1})

    def test_ipv6(self) -> None:
        """An IPv6 group binds and steers ::1 to one socket every time."""
        group = self.group(TCPListenAddress(socket.AF_INET6, "::1", 0), 2)
        port = group[0].getsockname()[1]
        places = {accepted_by(group, "::1", port, socket.AF_INET6) for _ in range(4)}
        self.assertEqual(places, {1})  # the last word of ::1 is 1; 1 % 2

    def test_unsteered(self) -> None:
        """Without steering (or once it is detached) the kernel spreads the connections of
        one client address over the group."""
        for steered in (False, True):
            group = self.group(TCPListenAddress(socket.AF_INET, "127.0.0.1", 0), 2, steered)
            if steered:
                detach_steering(group[0])
            port = group[0].getsockname()[1]
            places = {accepted_by(group, "127.0.0.2", port, socket.AF_INET) for _ in range(30)}
            self.assertEqual(places, {0, 1})

    def test_attached_later(self) -> None:
        """Steering attached to a running group takes effect for the next clients."""
        group = self.group(TCPListenAddress(socket.AF_INET, "127.0.0.1", 0), 2, False)
        attach_steering(group[0], 2)
        port = group[0].getsockname()[1]
        places = {accepted_by(group, "127.0.0.3", port, socket.AF_INET) for _ in range(10)}
        self.assertEqual(places, {1})

    def test_taken_address(self) -> None:
        """A port another socket (without SO_REUSEPORT) holds cannot be bound: OSError."""
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen(1)
            port = other.getsockname()[1]
            with self.assertRaises(OSError):
                listening_group(TCPListenAddress(socket.AF_INET, "127.0.0.1", port), 2)
