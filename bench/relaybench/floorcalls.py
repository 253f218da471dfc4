# -*- test-case-name: tests.bench.test_floor -*-
"""
The floor with penbal's system calls (alias ``floor-calls``), for comparison only.

What one object per connection would cost: a pure-Python epoll relay like the floor
(``floor.py``), but making the system calls penbal makes for a relayed connection, in
penbal's order, so that the kernel's share matches penbal's and only the Python differs:
the backend socket gets ``TCP_NODELAY`` and ``SO_KEEPALIVE``, its connect is waited for (a
write event, then a second ``connect`` to learn how it went, then one ``EPOLL_CTL_MOD`` to
reading), what the client sends first waits for it, and an end of stream is relayed as a
half-close (``shutdown(SHUT_WR)`` of the other side, and the ended side leaves the poll set)
until both sides have ended, which closes both.  One dict entry per socket and one small
object per connection; no timers, no backpressure (a short send ends it with an error, as in
the floor), no failover, no health, no log.

    python -m relaybench.floorcalls LISTEN_PORT BACKEND_PORT
"""

from __future__ import annotations

import errno
import select
import socket
import sys

LOOPBACK = "127.0.0.1"
_IN, _OUT = select.EPOLLIN, select.EPOLLOUT
_UNDER_WAY = (errno.EINPROGRESS, errno.EALREADY)


class Connection:
    """One relayed connection: its two sockets and where it stands."""

    __slots__ = ("backend", "backend_ended", "client", "client_ended", "early", "up")

    def __init__(self, client: socket.socket, backend: socket.socket) -> None:
        self.client = client
        self.backend = backend
        self.up = False  # the backend's connect completed
        self.client_ended = self.backend_ended = False
        self.early = b""  # what the client sent before its backend was up


def listen(port: int) -> tuple[socket.socket, select.epoll]:
    """A non-blocking listening socket on 127.0.0.1:C{port} (C{TCP_NODELAY}, which its clients
    inherit) and an epoll set watching it (the floors' common start)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by clients
    listener.bind((LOOPBACK, port))
    listener.listen(1024)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), _IN)
    return listener, poller


def serve(listen_port: int, backend_port: int) -> None:
    listener, poller = listen(listen_port)
    listening = listener.fileno()
    backend_address = (LOOPBACK, backend_port)
    # Each socket's descriptor: (the connection, whether it is the backend's).
    where: dict[int, tuple[Connection, bool]] = {}
    view = memoryview(bytearray(65536))
    while True:
        for fd, _event in poller.poll():
            if fd == listening:
                _accept(listener, backend_address, poller, where)
                continue
            found = where.get(fd)
            if found is None:
                continue
            conn, is_backend = found
            if is_backend and not conn.up:
                _connected(conn, fd, backend_address, poller)
                continue
            sock, other = (conn.backend, conn.client) if is_backend else (conn.client, conn.backend)
            try:
                got = sock.recv_into(view, 65536)
            except BlockingIOError:
                continue
            except OSError:
                got = 0
            if got:
                if not conn.up:  # the client spoke before its backend is up
                    conn.early += bytes(view[:got])
                    continue
                sent = other.send(view[:got])
                if sent != got:
                    sys.exit(f"floor-calls relay: a short send ({sent} of {got} bytes); it"
                             " buffers nothing, so it measures only loads that never fill a"
                             " socket (not the bulk row)")
                continue
            _ended(conn, fd, is_backend, poller, where)


def _accept(listener: socket.socket, backend_address: tuple[str, int], poller: select.epoll,
            where: dict[int, tuple[Connection, bool]]) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        client.setblocking(False)
        backend = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        backend.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn = Connection(client, backend)
        where[client.fileno()] = (conn, False)
        poller.register(client.fileno(), _IN)
        err = backend.connect_ex(backend_address)
        if err not in _UNDER_WAY and err != 0:
            sys.exit(f"floor-calls relay: connect: {errno.errorcode.get(err, err)}")
        where[backend.fileno()] = (conn, True)
        poller.register(backend.fileno(), _OUT)


def _connected(conn: Connection, fd: int, backend_address: tuple[str, int],
               poller: select.epoll) -> None:
    backend = conn.backend
    err = backend.connect_ex(backend_address)  # how it went (as penbal asks)
    if err in _UNDER_WAY:
        return
    if err and err != errno.EISCONN:
        sys.exit(f"floor-calls relay: connect: {errno.errorcode.get(err, err)}")
    conn.up = True
    poller.modify(fd, _IN)
    early = conn.early
    if early:
        conn.early = b""
        backend.send(early)
    if conn.client_ended:
        backend.shutdown(socket.SHUT_WR)


def _ended(conn: Connection, fd: int, is_backend: bool, poller: select.epoll,
           where: dict[int, tuple[Connection, bool]]) -> None:
    """One side's end of stream: half-close the other, or close both once both ended."""
    if is_backend:
        conn.backend_ended = True
    else:
        conn.client_ended = True
    if conn.client_ended and conn.backend_ended:
        for sock in (conn.client, conn.backend):
            where.pop(sock.fileno(), None)
            sock.close()  # leaves the poll set with its last descriptor
        return
    poller.unregister(fd)  # stop reading the ended side (penbal's stop_reading)
    if is_backend:
        conn.client.shutdown(socket.SHUT_WR)
    elif conn.up:
        conn.backend.shutdown(socket.SHUT_WR)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
