# -*- test-case-name: tests.test_options -*-
"""
The C{twist penbal} command line: options and their validation (assembly is in L{penbal.tap}).
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.python import usage

from penbal import __version__
from penbal.address import (
    BACKEND_FORM,
    BackendSpec,
    ListenSpec,
    SpecError,
    parse_backend,
    parse_listen,
)
from penbal.policies.registry import find_policies

SYNOPSIS = (
    "[options] LISTEN BACKEND [BACKEND ...]\n"
    "       twist penbal [options] --listen LISTEN --backend BACKEND [--backend BACKEND ...]\n\n"
    "LISTEN is [HOST:]PORT or a Twisted endpoint (tcp:3306:interface=127.0.0.1, unix:/path, ...)\n"
    f"BACKEND is {BACKEND_FORM}"
)


def _number(kind: type, low: float, name: str) -> Any:
    """A coercer for usage.Options that checks the range and names the option."""

    def coerce(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"expected a number >= {low} for {name}, got {text!r}") from None
        if value < low:
            raise ValueError(f"expected a number >= {low} for {name}, got {text!r}")
        return value

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


class Options(usage.Options):
    """Options of C{twist penbal}; names follow Pen's where Pen has one."""

    synopsis = SYNOPSIS
    longdesc = "A TCP load balancer in the spirit of Pen, with Galera Cluster awareness."

    optFlags = [
        ["stubborn", "s", "If the first choice cannot be reached, close the client (no failover)."],
        ["list-policies", None, "Print every selection policy with a description, then exit."],
    ]
    optParameters = [
        ["listen", None, None, "Where to listen: [HOST:]PORT or a Twisted endpoint string."],
        ["timeout", "t", 3.0, "Connect timeout towards a backend, in seconds.",
         _number(float, 0.001, "--timeout")],
        ["blacklist", "b", 30.0, "Seconds a backend that failed a connect is skipped.",
         _number(float, 0, "--blacklist")],
        ["max-connections", "x", 500, "Simultaneous client connections; more wait in the backlog.",
         _number(int, 1, "--max-connections")],
        ["emergency", "e", None, "HOST:PORT used only when every backend is unavailable."],
        ["policy", None, "roundrobin", "Selection policy by plugin name (see --list-policies)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["backends"] = []
        self.listen_spec: ListenSpec | None = None
        self.backend_specs: list[BackendSpec] = []
        self.emergency_spec: BackendSpec | None = None

    def opt_backend(self, value: str) -> None:
        """A backend HOST[:PORT[:MAXC[:HARD[:WEIGHT[:PRIO]]]]]; repeat for more."""
        self["backends"].append(value)

    def opt_version(self) -> None:
        """Print the version and exit."""
        print(f"penbal {__version__}")
        sys.exit(0)

    def parseOptions(self, options: Any = None) -> None:
        """Parse, and turn any mistake into one line on stderr and exit status 64."""
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            raise SystemExit(f"penbal: error: {e}") from None
        except SpecError as e:
            raise SystemExit(f"penbal: error: {e}") from None

    def parseArgs(self, *args: str) -> None:
        if self["listen"] is None and args:
            self["listen"] = args[0]
            args = args[1:]
        self["backends"].extend(args)

    def postOptions(self) -> None:
        if self["list-policies"]:
            for name, plugin in sorted(find_policies().items()):
                print(f"{name:<14} {plugin.description}")
            sys.exit(0)
        if self["listen"] is None:
            raise usage.UsageError("missing LISTEN: expected [HOST:]PORT or a Twisted endpoint")
        self.listen_spec = parse_listen(self["listen"])
        if not self["backends"]:
            raise usage.UsageError(f"missing BACKEND: expected at least one {BACKEND_FORM}")
        port = self.listen_spec.port
        self.backend_specs = [parse_backend(text, port) for text in self["backends"]]
        if self["emergency"] is not None:
            self.emergency_spec = parse_backend(self["emergency"], port)
        if self["policy"] not in find_policies():
            names = ", ".join(sorted(find_policies()))
            raise usage.UsageError(f"unknown policy {self['policy']!r}: expected one of {names}")
