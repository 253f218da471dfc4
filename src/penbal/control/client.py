# -*- test-case-name: tests.control.test_client -*-
"""
C{penbal-ctl}: send one command to a penbal control port and print the answer, like Pen's
C{penctl}::

    penbal-ctl 127.0.0.1:8888 servers
    penbal-ctl unix:/run/penbal/control server 2 drain

Exit status: 0 on success, 1 if penbal answered with an error line, 2 if it could not be
reached (or the command line was wrong).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import TextIO

from penbal.optiontypes import is_digits

USAGE = "usage: penbal-ctl [HOST:]PORT|unix:/path COMMAND [ARGUMENT ...]"
TIMEOUT = 30.0


class ClientError(Exception):
    """The control port could not be used; one line."""


def parse_target(text: str) -> tuple[int, str | tuple[str, int]]:
    """(address family, address) of C{[HOST:]PORT}, C{[V6]:PORT} or C{unix:/path}."""
    if text.startswith("unix:") or text.startswith("/"):
        path = text[5:] if text.startswith("unix:") else text
        if not path:
            raise ClientError(f"invalid control address {text!r}: expected unix:/path")
        return socket.AF_UNIX, path
    host, port = "127.0.0.1", text
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        if not rest.startswith(":"):
            raise ClientError(f"invalid control address {text!r}: expected [V6]:PORT")
        host, port = inside, rest[1:]
    elif ":" in text:
        host, _, port = text.rpartition(":")
    if not is_digits(port) or not 1 <= int(port) <= 65535:
        raise ClientError(f"invalid control address {text!r}: expected [HOST:]PORT or unix:/path")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


def send(target: str, command: str, timeout: float = TIMEOUT) -> str:
    """Send C{command} and return penbal's whole answer."""
    family, address = parse_target(target)
    try:
        if family == socket.AF_UNIX:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address)
        else:
            assert isinstance(address, tuple)
            sock = socket.create_connection(address, timeout=timeout)
    except OSError as e:
        raise ClientError(f"cannot connect to {target}: {e.strerror or e}") from None
    with sock:
        try:
            sock.sendall(command.encode("utf-8") + b"\n")
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError as e:
            raise ClientError(f"control connection to {target} failed: {e.strerror or e}") from None
    return b"".join(chunks).decode("utf-8", "replace")


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """The console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    err = err or sys.stderr
    if args and args[0] in ("-h", "--help"):
        print(USAGE, file=out)
        print("Commands: penbal-ctl ADDRESS help", file=out)
        return 0
    if len(args) < 2:
        print(USAGE, file=err)
        return 2
    try:
        answer = send(args[0], " ".join(args[1:]))
    except ClientError as e:
        print(f"penbal-ctl: error: {e}", file=err)
        return 2
    out.write(answer)
    out.flush()
    return 1 if answer.startswith("error:") else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
