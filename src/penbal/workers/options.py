# -*- test-case-name: tests.workers.test_options -*-
"""
The C{--workers} part of C{twist penbal}'s command line, checked after parsing (the rows join
L{penbal.options}' table).

C{--workers N} (or C{auto}: one per CPU) needs a plain TCP listen address the main process
can bind itself (C{[HOST:]PORT}, C{tcp:}, C{tcp6:}); UDP mode (C{-U}) stays one process and
refuses C{--workers} above 1.  C{--worker-fds} is set by the main process for its workers.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable
from typing import Any

from penbal.address import SpecError
from penbal.optiontypes import parse_int
from penbal.workers.sockets import TCPListenAddress

WORKERS_FORM = "a number of worker processes >= 1, or auto (one per CPU)"

WORKERS_PARAMETERS: list[list[Any]] = [
    ["workers", None, "1",
     "Worker processes relaying on the listen address (auto: one per CPU); the main process"
     " keeps the health checks, the control port and the status."],
    ["worker-fds", None, None,
     "Internal: LISTEN,CHANNEL descriptors a worker is started with by its main process"
     " (LISTEN is - for a spare worker)."],
]

_UNESCAPED_COLON = re.compile(r"(?<!\\):")


def parse_workers(text: str, cpus: Callable[[], int | None] = os.cpu_count) -> int:
    """C{--workers}: a whole number >= 1, or C{auto}."""
    if text == "auto":
        return max(1, cpus() or 1)
    try:
        count = parse_int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise SpecError(f"invalid --workers {text!r}: expected {WORKERS_FORM}")
    return count


def tcp_listen_address(endpoint: str) -> TCPListenAddress:
    """The plain TCP address of a C{tcp:} or C{tcp6:} endpoint description, for C{--workers}."""
    kind, *fields = (part.replace("\\", "") for part in _UNESCAPED_COLON.split(endpoint))
    problem = SpecError(
        f"--workers needs a plain TCP listen address ([HOST:]PORT, tcp:PORT or tcp6:PORT, "
        f"with interface= and backlog=), got {endpoint!r}"
    )
    if kind not in ("tcp", "tcp6") or not fields:
        raise problem
    family = socket.AF_INET6 if kind == "tcp6" else socket.AF_INET
    values = {"port": "", "interface": "::" if kind == "tcp6" else "0.0.0.0", "backlog": "1024"}
    if "=" not in fields[0]:
        values["port"] = fields.pop(0)
    for field in fields:
        key, equals, value = field.partition("=")
        if not equals or key not in ("port", "interface", "backlog"):
            raise problem
        values[key] = value
    try:
        host = ipaddress.ip_address(values["interface"])
        port, backlog = parse_int(values["port"]), parse_int(values["backlog"])
    except ValueError:
        raise problem from None
    if port > 65535 or (host.version == 6) != (family == socket.AF_INET6):
        raise problem
    return TCPListenAddress(family, str(host), port, max(1, backlog))


def check_workers_options(options: Any) -> None:
    """Turn C{--workers} into a count and, above 1, the address the main process binds."""
    options.worker_address = None
    options.worker_fds = None
    count = parse_workers(str(options["workers"]))
    options["workers"] = count
    fds = options.get("worker-fds")
    if fds is not None:
        listen, _, channel = str(fds).partition(",")
        try:
            options.worker_fds = (None if listen == "-" else parse_int(listen),
                              parse_int(channel))
        except ValueError:
            raise SpecError(f"invalid --worker-fds {fds!r}: expected LISTEN,CHANNEL") from None
        return
    if count == 1:
        return
    if options.get("udp"):
        raise SpecError(f"--workers {count} is for TCP: UDP mode (-U) runs in one process")
    assert options.listen_spec is not None
    options.worker_address = tcp_listen_address(options.listen_spec.endpoint)
