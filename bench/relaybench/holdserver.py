"""
A backend that accepts connections, echoes what it reads, and holds them.

Usage: ``python holdserver.py PORT`` (listens on 127.0.0.1:PORT until
SIGTERM). The benchmark sends one byte per connection and waits for the
echo, which proves the whole client-relay-backend path is open, then leaves
the connection idle. Standalone on purpose: it imports nothing from the
package.
"""

from __future__ import annotations

import resource
import selectors
import socket
import sys


def raise_nofile() -> None:
    """Allow many open connections."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(port: int) -> None:
    """Accept, echo and hold connections on 127.0.0.1:``port`` forever."""
    sel = selectors.DefaultSelector()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                _accept_all(listener, sel)
            else:
                _echo(sock, sel)


def _accept_all(listener: socket.socket, sel: selectors.BaseSelector) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ)


def _echo(sock: socket.socket, sel: selectors.BaseSelector) -> None:
    try:
        data = sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if not data:
        sel.unregister(sock)
        sock.close()
        return
    try:
        sock.sendall(data)
    except OSError:
        sel.unregister(sock)
        sock.close()


def main() -> None:
    raise_nofile()
    serve(int(sys.argv[1]))


if __name__ == "__main__":
    main()
