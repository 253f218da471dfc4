# -*- test-case-name: tests.bench.test_floor -*-
"""
The floor with the kernel relaying (alias ``floor-sockmap``), for comparison only.

What a kernel hand-off would reach: a pure-Python epoll relay like ``floorcalls.py`` that,
once a client's backend is connected, puts both sockets in a BPF ``SOCKHASH`` whose
``SK_SKB`` stream-verdict program redirects every segment one socket receives to the other
socket's send side (``bpf_sk_redirect_hash``), so that relayed bytes no longer wake the
process.  It sees only what the kernel leaves to it: bytes that reached a socket before it
joined the map (read and sent on as the floor does) and each end of stream, which it passes on
as a half-close only once the other socket has queued every byte this one received (the
redirect runs in a kernel worker, after the end of stream may have woken the relay:
``TCP_INFO``'s ``bytes_received`` against the other's ``bytes_sent - bytes_retrans +
notsent_bytes``).

Not a relay to run: no timers, no backpressure of its own (the kernel's), no failover, no
health, no log; bytes a client sends after its first ones but before its backend is up could
pass its first ones (the benchmark's loads send one request and wait); what it relays in user
space (a pair the map did not take) stops it on a short write, as the floor does
(request/response rows, not bulk); and its key is the two ports alone (loopback only).  Needs
``CAP_BPF`` and ``CAP_NET_ADMIN`` (root) and a kernel with ``CONFIG_BPF_STREAM_PARSER``.

    python -m relaybench.sockmap LISTEN_PORT [127.0.0.1:]BACKEND_PORT...
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import select
import socket
import struct
import sys
import time

from relaybench import floorcalls
from relaybench.floorcalls import _IN, _OUT, _UNDER_WAY, LOOPBACK, listen

_RDHUP = select.EPOLLRDHUP
_ENDED = select.EPOLLRDHUP | select.EPOLLHUP
#: Seconds an end of stream waits for the bytes before it to be queued on the other socket.
GIVE_UP = 5.0

# The bpf(2) system call (x86_64 and aarch64 numbers) and what this relay asks of it.
_NR_BPF = {"x86_64": 321, "aarch64": 280}
_MAP_CREATE, _MAP_UPDATE_ELEM, _MAP_DELETE_ELEM, _PROG_LOAD, _PROG_ATTACH = 0, 2, 3, 5, 8
_MAP_TYPE_HASH, _MAP_TYPE_SOCKHASH = 1, 18
_PROG_TYPE_SK_SKB = 14
_SK_SKB_STREAM_VERDICT = 5
_HELPER_MAP_LOOKUP_ELEM, _HELPER_SK_REDIRECT_HASH = 1, 72
_SK_PASS = 1
#: struct __sk_buff: remote_port (network order) and local_port (host order).
_REMOTE_PORT, _LOCAL_PORT = 132, 136
#: struct tcp_info, up to bytes_received (128), notsent_bytes (144), bytes_sent and
#: bytes_retrans (200, 208).
_TCP_INFO_SIZE = 232

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def verdict_program(ready_fd: int, sockets_fd: int) -> bytes:
    """key = (local_port, remote_port) of the socket the segment came to.  Not in the ready
    map: pass it (to be read by the relay, as if no program ran); else redirect it to the
    socket stored under that key in the socket map (its peer), to the peer's send side."""
    return b"".join((
        _insn(0xBF, dst=6, src=1),                        # r6 = ctx
        _insn(0x61, dst=2, src=6, off=_LOCAL_PORT),       # r2 = skb->local_port
        _insn(0x63, dst=10, src=2, off=-8),               # key[0] = r2
        _insn(0x61, dst=2, src=6, off=_REMOTE_PORT),      # r2 = skb->remote_port
        # Some kernels give it shifted left by 16 on little-endian machines: r2 |= r2 >> 16,
        # r2 &= 0xffff gives the port (network order) in the low half either way.
        _insn(0xBF, dst=3, src=2),
        _insn(0x77, dst=3, imm=16),
        _insn(0x4F, dst=2, src=3),
        _insn(0x57, dst=2, imm=0xFFFF),
        _insn(0x63, dst=10, src=2, off=-4),               # key[1] = r2
        _insn(0x18, dst=1, src=1, imm=ready_fd), _insn(0),  # r1 = the ready map
        _insn(0xBF, dst=2, src=10),                       # r2 = &key
        _insn(0x07, dst=2, imm=-8),
        _insn(0x85, imm=_HELPER_MAP_LOOKUP_ELEM),
        _insn(0x55, dst=0, off=2, imm=0),                 # found: skip the next two
        _insn(0xB7, dst=0, imm=_SK_PASS),
        _insn(0x95),
        _insn(0x18, dst=2, src=1, imm=sockets_fd), _insn(0),  # r2 = the socket map
        _insn(0xBF, dst=3, src=10),                       # r3 = &key
        _insn(0x07, dst=3, imm=-8),
        _insn(0xB7, dst=4, imm=0),                        # r4 = 0: the peer's egress
        _insn(0xBF, dst=1, src=6),                        # r1 = ctx
        _insn(0x85, imm=_HELPER_SK_REDIRECT_HASH),
        _insn(0x95),                                      # return it (SK_PASS or SK_DROP)
    ))


def _bpf(command: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, 128)
    number = _NR_BPF.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, f"no bpf(2) number for {os.uname().machine}")
    result = _libc.syscall(number, command, buf, 128)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({command}): {os.strerror(err)}")
    return int(result)


def _update(map_fd: int, key: bytes, value: bytes) -> None:
    keybuf = ctypes.create_string_buffer(key, len(key))
    valbuf = ctypes.create_string_buffer(value, len(value))
    _bpf(_MAP_UPDATE_ELEM, struct.pack("<IIQQQ", map_fd, 0, ctypes.addressof(keybuf),
                                       ctypes.addressof(valbuf), 0))


def _delete(map_fd: int, key: bytes) -> None:
    keybuf = ctypes.create_string_buffer(key, len(key))
    try:
        _bpf(_MAP_DELETE_ELEM, struct.pack("<IIQ", map_fd, 0, ctypes.addressof(keybuf)))
    except FileNotFoundError:
        pass


class KernelSplice:
    """A SOCKHASH whose verdict program sends what one socket of a pair receives to the
    other, once the pair is marked ready (until then it passes it, to be read as usual)."""

    def __init__(self, max_pairs: int = 65536) -> None:
        self.ready_fd = _bpf(_MAP_CREATE, struct.pack("<IIII", _MAP_TYPE_HASH, 8, 4,
                                                      2 * max_pairs))
        self.map_fd = _bpf(_MAP_CREATE, struct.pack("<IIII", _MAP_TYPE_SOCKHASH, 8, 4,
                                                    2 * max_pairs))
        insns = verdict_program(self.ready_fd, self.map_fd)
        self._insns = ctypes.create_string_buffer(insns, len(insns))
        self._license = ctypes.create_string_buffer(b"GPL")
        log = ctypes.create_string_buffer(65536)
        attr = struct.pack("<IIQQIIQ", _PROG_TYPE_SK_SKB, len(insns) // 8,
                           ctypes.addressof(self._insns), ctypes.addressof(self._license),
                           1, len(log), ctypes.addressof(log))
        try:
            self.prog_fd = _bpf(_PROG_LOAD, attr)
        except OSError as e:
            raise OSError(e.errno, f"{e.strerror}: {log.value.decode(errors='replace')}") from e
        _bpf(_PROG_ATTACH, struct.pack("<IIII", self.map_fd, self.prog_fd,
                                       _SK_SKB_STREAM_VERDICT, 0))

    def join(self, a: socket.socket, b: socket.socket) -> tuple[bytes, bytes] | None:
        """Put C{a} and C{b} in the socket map, each under the other's key, and mark them
        ready: from then on what C{a} receives goes out of C{b}, and the other way round.
        Their keys, or None when a socket is no longer established (the map takes only
        those): then what either receives is read as usual, also for a socket the map took
        (its bytes are passed, never redirected)."""
        key_a, key_b = _key(a), _key(b)
        try:
            _update(self.map_fd, key_b, struct.pack("<I", a.fileno()))
            _update(self.map_fd, key_a, struct.pack("<I", b.fileno()))
        except OSError:
            return None
        _update(self.ready_fd, key_a, b"\0\0\0\0")
        _update(self.ready_fd, key_b, b"\0\0\0\0")
        return key_a, key_b

    def leave(self, keys: tuple[bytes, bytes]) -> None:
        """The pair's sockets are closed (which takes them out of the socket map): forget
        that their keys were ready, for the next sockets with the same ports."""
        for key in keys:
            _delete(self.ready_fd, key)


def _key(sock: socket.socket) -> bytes:
    """The key the verdict program computes for segments to C{sock}."""
    local_port = sock.getsockname()[1]
    remote_port = sock.getpeername()[1]
    return struct.pack("<I", local_port) + struct.pack("<I", socket.htons(remote_port))


def received(sock: socket.socket) -> int:
    """Bytes C{sock} has received before its end of stream (TCP_INFO's C{bytes_received}
    counts the FIN's sequence number too: it is asked once the FIN is in)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    return int(struct.unpack_from("<Q", info, 128)[0]) - 1


def queued(sock: socket.socket) -> int:
    """Bytes C{sock} has taken to send: sent (less retransmissions) and not yet sent."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    notsent = struct.unpack_from("<I", info, 144)[0]
    sent, retrans = struct.unpack_from("<QQ", info, 200)
    return int(sent - retrans + notsent)


class Connection(floorcalls.Connection):
    """floor-calls' connection, and the keys of its pair in the map."""

    __slots__ = ("keys",)

    def __init__(self, client: socket.socket, backend: socket.socket) -> None:
        super().__init__(client, backend)
        self.keys: tuple[bytes, bytes] | None = None  # joined in the map: the kernel relays


def serve(listen_port: int, backend_ports: list[int]) -> None:
    splice = KernelSplice()
    listener, poller = listen(listen_port)
    listening = listener.fileno()
    turn = itertools.cycle([(LOOPBACK, port) for port in backend_ports])
    where: dict[int, tuple[Connection, bool]] = {}
    #: Ends of stream waiting for the other socket to queue what this one received (checked
    #: on every pass of the loop, which then polls without sleeping), until a deadline.
    waiting: list[tuple[Connection, bool, float]] = []
    view = memoryview(bytearray(65536))
    while True:
        for fd, event in poller.poll(0 if waiting else -1):
            if fd == listening:
                _accept(listener, turn, poller, where)
                continue
            found = where.get(fd)
            if found is None:
                continue
            conn, is_backend = found
            if is_backend and not conn.up:
                _connected(conn, fd, poller, splice, view)
                continue
            if conn.keys is not None:  # the kernel relays: only an end of stream is news
                if not event & _ENDED and _spurious_epipe(conn, is_backend):
                    continue
                poller.unregister(fd)
                waiting.append((conn, is_backend, time.monotonic() + GIVE_UP))
                continue
            sock, other = (conn.backend, conn.client) if is_backend else (conn.client, conn.backend)
            try:
                got = sock.recv_into(view, 65536)
            except BlockingIOError:
                continue
            except OSError:
                got = 0
            if got:
                if not conn.up:
                    conn.early += bytes(view[:got])
                    continue
                other.sendall(view[:got])  # a pair the map did not take: relayed here
                continue
            poller.unregister(fd)
            waiting.append((conn, is_backend, time.monotonic() + GIVE_UP))
        if waiting:
            waiting = [w for w in waiting if not _ended(*w, where, splice)]


def _spurious_epipe(conn: Connection, is_backend: bool) -> bool:
    """Whether an error on a socket of the map is the C{EPIPE} that the kernel leaves on it
    when the other socket's end of stream comes in (seen on Linux 6.18; the socket still
    sends and receives, and reading C{SO_ERROR} clears it)."""
    sock = conn.backend if is_backend else conn.client
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.EPIPE


def _accept(listener: socket.socket, turn: itertools.cycle[tuple[str, int]],
            poller: select.epoll, where: dict[int, tuple[Connection, bool]]) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        client.setblocking(False)
        backend = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(client, backend)
        where[client.fileno()] = (conn, False)
        poller.register(client.fileno(), _IN)
        err = backend.connect_ex(next(turn))
        if err not in _UNDER_WAY and err != 0:
            sys.exit(f"floor-sockmap relay: connect: {errno.errorcode.get(err, err)}")
        where[backend.fileno()] = (conn, True)
        poller.register(backend.fileno(), _OUT)


def _connected(conn: Connection, fd: int, poller: select.epoll, splice: KernelSplice,
               view: memoryview) -> None:
    """The backend is up: join the pair in the map, then send on what either socket got
    before (the client's first bytes, a server's greeting), and from then on watch only for
    the end of each stream (C{EPOLLRDHUP}: a socket in the map may also be woken for bytes
    the kernel redirected, and a read of one whose sending side is shut down fails with
    C{EPIPE})."""
    client, backend = conn.client, conn.backend
    err = backend.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        sys.exit(f"floor-sockmap relay: connect: {errno.errorcode.get(err, err)}")
    conn.up = True
    conn.keys = splice.join(client, backend)  # None: relayed here
    early = conn.early
    if early:
        conn.early = b""
        backend.sendall(early)
    if conn.keys is None:
        poller.modify(fd, _IN)
        if conn.client_ended:
            backend.shutdown(socket.SHUT_WR)
        return
    for sock, other in ((client, backend), (backend, client)):
        while True:
            try:
                got = sock.recv_into(view, 65536)
            except OSError:
                break
            if not got:
                break
            other.sendall(view[:got])
    poller.modify(fd, _RDHUP)
    if not conn.client_ended:
        poller.modify(client.fileno(), _RDHUP)


def _ended(conn: Connection, is_backend: bool, deadline: float,
           where: dict[int, tuple[Connection, bool]], splice: KernelSplice) -> bool:
    """One side's end of stream, once the other side has queued all it received: half-close
    the other, or close both once both ended.  False while bytes are still on their way (for
    at most L{GIVE_UP} seconds: a peer that stops reading must not keep the loop spinning)."""
    sock, other = (conn.backend, conn.client) if is_backend else (conn.client, conn.backend)
    if conn.keys is not None and queued(other) < received(sock):
        if time.monotonic() < deadline:
            return False
        print(f"floor-sockmap relay: gave up waiting {GIVE_UP:g}s for the bytes before an"
              " end of stream to be queued; passing the end on", file=sys.stderr)
    if is_backend:
        conn.backend_ended = True
    else:
        conn.client_ended = True
    if conn.client_ended and conn.backend_ended:
        if conn.keys is not None:
            splice.leave(conn.keys)
        for s in (conn.client, conn.backend):
            where.pop(s.fileno(), None)
            s.close()
        return True
    if is_backend or conn.up:
        other.shutdown(socket.SHUT_WR)
    return True


if __name__ == "__main__":
    serve(int(sys.argv[1]), [int(backend.rsplit(":", 1)[-1]) for backend in sys.argv[2:]])
