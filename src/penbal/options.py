# -*- test-case-name: tests.test_options -*-
"""
The C{twist penbal} command line: options and their validation (assembly is in L{penbal.tap}).
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.python import usage

from penbal import __version__
from penbal.accesslog import FORMATS as ACCESS_LOG_FORMATS
from penbal.address import (
    BACKEND_FORM,
    BackendSpec,
    ListenSpec,
    SpecError,
    parse_backend,
    parse_listen,
)
from penbal.control.options import OPERATIONS_PARAMETERS, check_operations_options
from penbal.edges.config import EdgeOptions
from penbal.health.options import HEALTH_FLAGS, HEALTH_PARAMETERS, check_health_options
from penbal.launcher import keep_tls_out, launcher_kind, prefer_lean_reactor
from penbal.optiontypes import choice, number
from penbal.policies.choice import PolicyChoice, PolicyChoiceError, choose_policy
from penbal.policies.registry import find_policies, scan_policies
from penbal.udp.listen import parse_udp_listen
from penbal.udp.options import check_udp_options
from penbal.workers.options import WORKERS_PARAMETERS, check_workers_options
from penbal.workers.sockets import TCPListenAddress

SYNOPSIS = (
    "[options] LISTEN BACKEND [BACKEND ...]\n"
    "       twist penbal [options] --listen LISTEN --backend BACKEND [--backend BACKEND ...]\n\n"
    "LISTEN is [HOST:]PORT or a Twisted endpoint (tcp:3306:interface=127.0.0.1, unix:/path, ...)\n"
    f"BACKEND is {BACKEND_FORM}"
)


#: How relayed bytes move (see penbal.relay): on penbal's own TCP transport, on Twisted's
#: sent at once when nothing is queued, or always through Twisted's write buffer.
RELAY_PATHS = ("lean", "twisted")
#: Older names of the stock path (write-through and plain were two ways of using Twisted's
#: transports; both are now the one stock path).
RELAY_PATH_ALIASES = {"write-through": "twisted", "plain": "twisted"}


class Options(EdgeOptions, usage.Options):
    """Options of C{twist penbal}; names follow Pen's where Pen has one."""

    synopsis = SYNOPSIS
    longdesc = "A TCP load balancer in the spirit of Pen, with Galera Cluster awareness."

    optFlags = [
        ["stubborn", "s", "If the first choice cannot be reached, close the client (no failover)."],
        ["udp", "U", "UDP mode (Pen's -U): LISTEN is [HOST:]PORT or udp:PORT[:interface=ADDR]."],
        ["list-policies", None, "Print every selection policy with a description, then exit."],
        ["roundrobin", "r", "No client table (Pen's -r): round-robin, or -h/-W/--prio alone."],
        ["hash", "h", "New clients by a hash of the client IP (policy hash)."],
        ["weight", "W", "New clients to the fewest connections per weight (policy weight)."],
        ["prio", None, "New clients to the lowest prio number available (policy prio)."],
    ]
    optParameters = [
        ["listen", None, None, "Where to listen: [HOST:]PORT or a Twisted endpoint string."],
        ["timeout", "t", 3.0, "Connect timeout towards a backend, in seconds.",
         number(float, 0.001, "--timeout")],
        ["first-byte-timeout", None, None,
         "Seconds a connected backend has to send its first byte, else the client fails over"
         " (server-speaks-first protocols: MySQL); 0 = off. [default: --timeout with"
         " --check galera, else 0]",
         number(float, 0, "--first-byte-timeout")],
        ["queue-timeout", None, None,
         "Seconds a new client is held, its bytes kept, while no backend is usable (a Galera"
         " view change), then dialled to the first that is, or closed; 0 = never held."
         " [default: 2 with --check galera, else 0]",
         number(float, 0, "--queue-timeout")],
        ["queue-max", None, 1000, "Most clients held at once by --queue-timeout.",
         number(int, 1, "--queue-max")],
        ["blacklist", "b", 30.0, "Seconds a backend that failed a connect is skipped.",
         number(float, 0, "--blacklist")],
        ["max-connections", "x", 500, "Simultaneous client connections; more wait in the backlog.",
         number(int, 1, "--max-connections")],
        ["emergency", "e", None, "HOST:PORT used only when every backend is unavailable."],
        ["udp-idle", None, 30.0, "UDP: end a client's session after this many idle seconds.",
         number(float, 0.001, "--udp-idle")],
        ["udp-resend", None, 4,
         "UDP: on a move, send again at most N unanswered datagrams (only to a backend that"
         " has replied; 0 = never).",
         number(int, 0, "--udp-resend")],
        ["udp-check", None, None, "UDP: probe each backend with HEX_PAYLOAD[:EXPECT_HEX]."],
        ["udp-check-interval", None, 2.0, "UDP: seconds between two probes of a backend.",
         number(float, 0.01, "--udp-check-interval")],
        ["udp-check-timeout", None, 1.0, "UDP: seconds a probe waits for its reply.",
         number(float, 0.001, "--udp-check-timeout")],
        ["policy", None, None,
         "Selection policy by plugin name (see --list-policies). [default: sticky]"],
        ["clients", "c", 2048,
         "Size of the sticky client table; with -U also the most UDP sessions at once (least "
         "recently used evicted).",
         number(int, 1, "--clients")],
        ["tracking", "T", 0.0, "Seconds a client stays in the client table; 0 = forever.",
         number(float, 0, "--tracking")],
        ["relay-path", None, "lean",
         "How bytes are relayed: lean (penbal's own TCP transport for plain TCP legs) or"
         " twisted (Twisted's transports only, touching none of its internals: the stock"
         " baseline).",
         choice("--relay-path", RELAY_PATHS, RELAY_PATH_ALIASES)],
        ["access-log", "l", None,
         "Access log (Pen's -l): one line per connection (client, backend, bytes each way,"
         " duration, how it ended) in this file, - for standard output; reopened on SIGHUP"
         " and SIGUSR1. [default: none]"],
        ["access-log-format", None, "text", "Access log lines: text or json.",
         choice("--access-log-format", ACCESS_LOG_FORMATS)],
        ["read-size", None, 1048576,
         "Largest read from a socket, in bytes, on the lean path (bulk).",
         number(int, 1024, "--read-size")],
    ]

    optFlags += HEALTH_FLAGS
    optParameters += HEALTH_PARAMETERS
    optParameters += OPERATIONS_PARAMETERS
    optParameters += WORKERS_PARAMETERS

    def __init__(self) -> None:
        super().__init__()
        self["backends"] = []
        self.listen_spec: ListenSpec | None = None
        self.backend_specs: list[BackendSpec] = []
        self.emergency_spec: BackendSpec | None = None
        self.policy_choice = PolicyChoice("sticky")
        #: C{"twist"}, C{"twistd"} or None: what runs penbal (start-up errors differ).
        self.launcher: str | None = None
        #: The arguments as given (a worker process is started with the same ones).
        self.arguments: list[str] = []
        #: --workers above 1: the TCP address the main process binds for its workers.
        self.worker_address: TCPListenAddress | None = None
        #: A worker's listening socket (None for a spare) and AMP channel (--worker-fds).
        self.worker_fds: tuple[int | None, int] | None = None

    def opt_backend(self, value: str) -> None:
        """A backend HOST[:PORT[:MAXC[:HARD[:WEIGHT[:PRIO]]]]]; repeat for more."""
        self["backends"].append(value)

    def opt_version(self) -> None:
        """Print the version and exit."""
        print(f"penbal {__version__}")
        sys.exit(0)

    def parseOptions(self, options: Any = None) -> None:
        """Parse, and turn any mistake into one line on stderr and exit status 64."""
        self.arguments = list(sys.argv[1:] if options is None else options)
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
            scan = scan_policies()
            for name, plugin in sorted(scan.plugins.items()):
                print(f"{name:<14} {plugin.description}")
            for problem in scan.problems:
                print(f"penbal: warning: {problem}", file=sys.stderr)
            sys.exit(0)
        if self["listen"] is None:
            raise usage.UsageError("missing LISTEN: expected [HOST:]PORT or a Twisted endpoint")
        self.listen_spec = (parse_udp_listen if self["udp"] else parse_listen)(self["listen"])
        check_udp_options(self)
        check_health_options(self)
        check_operations_options(self)
        check_workers_options(self)
        if not self["backends"] and self["config"] is None:  # -F may add them
            raise usage.UsageError(f"missing BACKEND: expected at least one {BACKEND_FORM}")
        port = self.listen_spec.port
        self.backend_specs = [parse_backend(text, port) for text in self["backends"]]
        self.check_edges(self.backend_specs)  # TLS, PROXY, ACLs, HTTP mode, hygiene
        if self["emergency"] is not None:
            self.emergency_spec = parse_backend(self["emergency"], port)
        try:
            self.policy_choice = choose_policy(
                self["policy"], bool(self["roundrobin"]), bool(self["hash"]),
                bool(self["weight"]), bool(self["prio"]))
        except PolicyChoiceError as e:
            raise usage.UsageError(str(e)) from None
        policies = find_policies()
        for name in filter(None, (self.policy_choice.name, self.policy_choice.base)):
            if name not in policies:
                names = ", ".join(sorted(policies))
                raise usage.UsageError(f"unknown policy {name!r}: expected one of {names}")
        self._settle_with_launcher()

    def _settle_with_launcher(self) -> None:
        """Before the reactor exists: pyOpenSSL out if no TLS, the lean reactor as default
        (see L{penbal.launcher})."""
        launcher = getattr(self, "parent", None)  # twist's or twistd's options, if run by one
        assert self.listen_spec is not None
        endpoints = [self.listen_spec.endpoint, *filter(None, (
            getattr(self, "control_endpoint", None), getattr(self, "http_endpoint", None)))]
        keep_tls_out(launcher, endpoints, self.edges.backend_tls is not None)
        prefer_lean_reactor(launcher)
        self.launcher = launcher_kind(launcher)


def first_byte_timeout(options: Any) -> float:
    """C{--first-byte-timeout}, or its default: the connect timeout when the backends are
    Galera nodes (MySQL servers greet first; a frozen node accepts and never does), else off."""
    given = options["first-byte-timeout"]
    if given is not None:
        return float(given)
    return float(options["timeout"]) if options["check"] == "galera" else 0.0


def queue_timeout(options: Any) -> float:
    """C{--queue-timeout}, or its default: 2 s in front of Galera nodes (a view change can
    leave no node fit for about a second), else off."""
    given = options["queue-timeout"]
    if given is not None:
        return float(given)
    return 2.0 if options["check"] == "galera" else 0.0
