# -*- test-case-name: tests.control.test_operations -*-
"""
The operations part of C{twist penbal}'s command line (control port, HTTP status, config
file, graceful stop), checked after parsing; the rows join L{penbal.options}' table.
"""

from __future__ import annotations

from typing import Any

from penbal.address import SpecError
from penbal.control.endpoint import parse_endpoint
from penbal.edges.acl import AclEntry, AclError, parse_network

#: --control-acl fills this access list and makes it the control ACL (Pen's control_acl N).
CONTROL_ACL_NUMBER = 9


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"expected a number of seconds >= 0 for --shutdown-timeout, got {text!r}"
        ) from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"expected a number of seconds >= 0 for --shutdown-timeout, got {text!r}")
    return value


_seconds.coerceDoc = ""  # type: ignore[attr-defined]

OPERATIONS_PARAMETERS: list[list[Any]] = [
    ["control", "C", None,
     "Control port (Pen's penctl protocol): [HOST:]PORT (HOST 127.0.0.1 unless given), "
     "unix:/path (mode 600 unless :mode=NNN) or a Twisted endpoint."],
    ["control-acl", None, None,
     "Who may use a TCP control port: ADDR[/PREFIX][,ADDR[/PREFIX]...] (fills access list "
     f"{CONTROL_ACL_NUMBER}, made the control ACL)."],
    ["http", None, None,
     "HTTP status (/ page, /status.json, /metrics, /health): [HOST:]PORT or unix:/path;"
     " read-only."],
    ["config", "F", None,
     "Config file of control commands, applied after the command line; re-read on SIGHUP."],
    ["shutdown-timeout", None, 30.0,
     "On SIGTERM, seconds live connections get to finish before they are closed.", _seconds],
]


def parse_acl_list(text: str) -> tuple[AclEntry, ...]:
    """C{ADDR[/PREFIX],...} as permit entries; L{SpecError} names the bad one."""
    entries = []
    for item in text.split(","):
        if not item.strip():
            raise SpecError(f"invalid --control-acl {text!r}: expected ADDR[/PREFIX][,...]")
        try:
            entries.append(AclEntry(True, parse_network(item.strip())))
        except AclError as e:
            raise SpecError(f"invalid --control-acl: {e}") from None
    return tuple(entries)


def check_operations_options(options: Any) -> None:
    """Check the endpoints and the ACL; store their parsed forms on C{options}."""
    options.control_endpoint = None
    options.http_endpoint = None
    options.control_acl_entries = ()
    if options.get("control") is not None:
        options.control_endpoint = parse_endpoint(options["control"], "--control")
    if options.get("http") is not None:
        options.http_endpoint = parse_endpoint(options["http"], "--http")
    if options.get("control-acl") is not None:
        if options.control_endpoint is None:
            raise SpecError("--control-acl needs --control (a control port to protect)")
        options.control_acl_entries = parse_acl_list(options["control-acl"])
