# -*- test-case-name: tests.workers.test_sockets -*-
"""
The listening sockets of C{--workers N}: one C{SO_REUSEPORT} socket per worker, all bound to
the listen address, held open by the main process for as long as penbal runs, and a classic
BPF program that steers each client address to one of them.

Why the main process holds them: a socket of a C{SO_REUSEPORT} group keeps its accept queue
for as long as any process has it open.  A worker that dies leaves its socket with the main
process, so the clients queued on it (and the ones the kernel steers to it meanwhile) wait
for the replacement worker, which adopts the same socket, instead of being reset.  It also
keeps the group's order fixed, which the steering program's answer (a place in the group)
depends on.

The steering program (C{SO_ATTACH_REUSEPORT_CBPF}): load a 32-bit word of the client's
source address from the network header, take it modulo the group's size, return it as the
place of the socket to queue the client on.  IPv4: the whole address; IPv6: its last word.
A given client address thus always reaches the same worker, which keeps the sticky client
table exact across workers.  Policies that keep nothing per client address do without it: the
kernel's own hash then spreads even the connections of one client address over the workers.
Checked on Linux 6.1.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from dataclasses import dataclass

#: <asm-generic/socket.h>; Python's socket module does not name it.
SO_ATTACH_REUSEPORT_CBPF = 51
#: <linux/filter.h>: negative offsets in a load reach the network header.
SKF_NET_OFF = -0x100000
_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_ALU_MOD_K = 0x04 | 0x90 | 0x00  # BPF_ALU | BPF_MOD | BPF_K
_RET_A = 0x06 | 0x10  # BPF_RET | BPF_A
_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K
#: A place past any group's end: the kernel then uses its own hash.
_NO_PLACE = 0xFFFFFFFF
#: Where the hashed word of the source address sits in the network header.
SOURCE_WORD: dict[int, int] = {socket.AF_INET: 12, socket.AF_INET6: 8 + 12}


@dataclass(frozen=True)
class TCPListenAddress:
    """A plain TCP listen address the main process can bind itself."""

    family: int
    host: str
    port: int
    backlog: int = 1024

    def describe(self) -> str:
        """C{HOST:PORT}, IPv6 in brackets."""
        host = f"[{self.host}]" if self.family == socket.AF_INET6 else self.host
        return f"{host}:{self.port}"


def steering_program(family: int, count: int) -> bytes:
    """The classic BPF instructions (C{struct sock_filter}s) that steer by source address."""
    offset = (SKF_NET_OFF + SOURCE_WORD[family]) & 0xFFFFFFFF
    return b"".join(
        struct.pack("HBBI", code, 0, 0, k)
        for code, k in ((_LD_W_ABS, offset), (_ALU_MOD_K, count), (_RET_A, 0))
    )


def spreading_program() -> bytes:
    """A program that names no socket, so that the kernel spreads clients by its own hash of
    the addresses and ports of both ends (each connection on its own)."""
    return struct.pack("HBBI", _RET_K, 0, 0, _NO_PLACE)


def attach_steering(sock: socket.socket, count: int) -> None:
    """Attach the steering program to the group C{sock} belongs to (C{count} sockets)."""
    _attach(sock, steering_program(sock.family, count))


def detach_steering(sock: socket.socket) -> None:
    """Let the kernel spread clients over the group again.  (C{SO_DETACH_REUSEPORT_BPF} is
    refused by some kernels: a program that names no socket is attached instead.)"""
    _attach(sock, spreading_program())


def _attach(sock: socket.socket, code: bytes) -> None:
    instructions = ctypes.create_string_buffer(code, len(code))
    program = struct.pack("HL", len(code) // 8, ctypes.addressof(instructions))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, program)


def listening_group(address: TCPListenAddress, count: int,
                    steered: bool = True) -> list[socket.socket]:
    """C{count} listening sockets on C{address}, one C{SO_REUSEPORT} group, steered by the
    client's address if C{steered}.  Raises C{OSError} (everything opened is closed) if the
    address cannot be bound."""
    group: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(address.family, socket.SOCK_STREAM)
            group.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            port = group[0].getsockname()[1] if len(group) > 1 else address.port
            sock.bind((address.host, port))
            sock.listen(address.backlog)
            sock.setblocking(False)
        if steered:
            attach_steering(group[0], count)
    except OSError:
        for sock in group:
            sock.close()
        raise
    return group
