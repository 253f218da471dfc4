# -*- test-case-name: tests.bench.test_floor -*-
"""
The floor: a featureless pure-Python epoll relay, for comparison only (alias ``floor``).

What the interpreter alone costs per relayed byte, event and connection: accept, connect to
the one backend, then ``recv_into`` a shared buffer and ``send`` to the other side, a close for
a close.  No timers, no half-close, no backpressure (a short write ends it with an error: the
request/response loads of bench/run never fill a loopback socket; the bulk row would), no
failover, no health, no log: not a relay anyone should run, the line below which penbal's own
features cannot go.

    python -m relaybench.floor LISTEN_PORT BACKEND_PORT
"""

from __future__ import annotations

import select
import socket
import sys

LOOPBACK = "127.0.0.1"


def serve(listen_port: int, backend_port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, listen_port))
    listener.listen(1024)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    sockets: dict[int, socket.socket] = {}
    peers: dict[int, socket.socket] = {}
    view = memoryview(bytearray(65536))
    while True:
        for fd, _ in poller.poll():
            if fd == listener.fileno():
                _accept(listener, backend_port, poller, sockets, peers)
                continue
            sock = sockets.get(fd)
            if sock is None:
                continue
            try:
                got = sock.recv_into(view, 65536)
            except BlockingIOError:
                continue
            except OSError:
                got = 0
            if got:
                sent = peers[fd].send(view[:got])
                if sent != got:
                    sys.exit(f"floor relay: a short send ({sent} of {got} bytes); it buffers"
                             " nothing, so it measures only loads that never fill a socket"
                             " (not the bulk row)")
                continue
            _close_both(sock, poller, sockets, peers)


def _accept(listener: socket.socket, backend_port: int, poller: select.epoll,
            sockets: dict[int, socket.socket], peers: dict[int, socket.socket]) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        client.setblocking(False)
        backend = socket.socket()
        backend.setblocking(False)
        backend.connect_ex((LOOPBACK, backend_port))
        for one, other in ((client, backend), (backend, client)):
            sockets[one.fileno()] = one
            peers[one.fileno()] = other
            poller.register(one.fileno(), select.EPOLLIN)


def _close_both(sock: socket.socket, poller: select.epoll,
                sockets: dict[int, socket.socket], peers: dict[int, socket.socket]) -> None:
    for one in (sock, peers[sock.fileno()]):
        fd = one.fileno()
        sockets.pop(fd, None)
        peers.pop(fd, None)
        if fd >= 0:
            poller.unregister(fd)
        one.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
