# -*- test-case-name: tests.test_address -*-
"""
Parsing of the command line's addresses: Pen's LISTEN and server specs.

LISTEN is Pen's ``[HOST:]PORT`` or any Twisted server endpoint string; a backend is Pen's
``HOST[:PORT[:MAXC[:HARD[:WEIGHT[:PRIO]]]]]`` with IPv6 hosts in brackets.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property

from penbal.optiontypes import is_digits

ENDPOINT_PREFIXES = ("tcp:", "tcp6:", "unix:", "ssl:", "tls:", "systemd:", "haproxy:", "le:")

BACKEND_FORM = "HOST[:PORT[:MAXC[:HARD[:WEIGHT[:PRIO]]]]] (IPv6 host in brackets)"
LISTEN_FORM = "[HOST:]PORT or a Twisted endpoint such as tcp:3306:interface=127.0.0.1"

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?$"
)


class SpecError(ValueError):
    """A user-supplied address is malformed; the message names the value and the form."""


@dataclass(frozen=True)
class BackendSpec:
    """One server of Pen's server table, as written by the user."""

    host: str
    port: int
    maxc: int = 0
    hard: int = 0
    weight: int = 0
    prio: int = 0

    @cached_property
    def address(self) -> str:
        """``HOST:PORT`` with IPv6 in brackets, as the user would type it (worked out once:
        every ended connection's record names it)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def format(self) -> str:
        """The full Pen server spec, round-trippable through L{parse_backend}."""
        return f"{self.address}:{self.maxc}:{self.hard}:{self.weight}:{self.prio}"


@dataclass(frozen=True)
class ListenSpec:
    """Where to listen: a Twisted server endpoint description, and its port if known."""

    endpoint: str
    port: int | None


@dataclass(frozen=True)
class TCPListen:
    """A plain TCP listen address, with Twisted's defaults: what penbal's own listening port
    (L{penbal.relay.leanport}) needs to bind it."""

    port: int
    interface: str = ""
    backlog: int = 50


#: The positional fields of C{tcp:} and C{tcp6:} in Twisted's endpoint language, in order.
_TCP_FIELDS = {"tcp": ("port", "interface", "backlog"), "tcp6": ("port", "backlog", "interface")}


def tcp_listen(description: str) -> TCPListen | None:
    """The address of a C{tcp:} or C{tcp6:} server endpoint string (read as Twisted reads
    it: fields split on unescaped colons, C{key=value} or positional), or None for any other
    endpoint, or one with fields this does not know (Twisted's parser then has it, and says
    what is wrong)."""
    fields = _endpoint_fields(description)
    kind = fields[0][1] if fields and fields[0][0] is None else ""
    names = _TCP_FIELDS.get(kind)
    if names is None:
        return None
    values: dict[str, str] = {}
    for place, (key, value) in enumerate(fields[1:]):
        if key is None:
            if place >= len(names):
                return None
            key = names[place]
        if key in values or key not in names:
            return None
        values[key] = value
    port, backlog = values.get("port", ""), values.get("backlog", "50")
    if not (is_digits(port) and int(port) <= 65535 and is_digits(backlog)):
        return None
    interface = values.get("interface", "::" if kind == "tcp6" else "")
    return TCPListen(int(port), interface, int(backlog))


def _endpoint_fields(description: str) -> list[tuple[str | None, str]]:
    """The C{(key or None, value)} fields of an endpoint string, unescaped as Twisted does
    (a backslash takes the next character as it is; after C{=}, only a colon ends the
    value)."""
    fields: list[tuple[str | None, str]] = []
    key: str | None = None
    current: list[str] = []
    chars = iter(description)
    for char in chars:
        if char == ":":
            fields.append((key, "".join(current)))
            key, current = None, []
        elif char == "=" and key is None:
            key, current = "".join(current), []
        elif char == "\\":
            current.append(next(chars, ""))
        else:
            current.append(char)
    fields.append((key, "".join(current)))
    return fields


def parse_port(text: str, what: str) -> int:
    """A TCP/UDP port 1-65535, or L{SpecError} naming C{what}."""
    if not is_digits(text) or not 1 <= int(text) <= 65535:
        raise SpecError(f"invalid port {text!r} in {what}: expected a number 1-65535")
    return int(text)


def check_host(host: str, what: str) -> str:
    """An IP literal or a syntactically valid host name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise SpecError(f"invalid host {host!r} in {what}: expected an IP address or host name")
    return host


def _split_host(text: str, what: str, form: str) -> tuple[str, list[str]]:
    """Split ``[v6]:rest`` or ``host:rest`` into the host and the remaining fields."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SpecError(f"invalid {what} {text!r}: unclosed '[', expected {form}")
        host = text[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SpecError(
                f"invalid {what} {text!r}: {host!r} is not an IPv6 address, expected {form}"
            ) from None
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SpecError(f"invalid {what} {text!r}: expected {form}")
        return host, rest[1:].split(":") if rest else []
    parts = text.split(":")
    for n in range(len(parts), 2, -1):  # an IPv6 address has two colons at least
        candidate = ":".join(parts[:n])
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        raise SpecError(
            f"invalid {what} {text!r}: {candidate!r} reads as an IPv6 address, which goes in"
            f" brackets (as in [::1]:3306); for a host name, give the port (HOST:PORT:...);"
            f" expected {form}"
        )
    host, *fields = parts
    return host, fields


def parse_backend(text: str, default_port: int | None) -> BackendSpec:
    """Parse Pen's server spec; a missing port means C{default_port} (the listen port)."""
    text = text.strip()
    if not text:
        raise SpecError(f"empty backend: expected {BACKEND_FORM}")
    host, fields = _split_host(text, "backend", BACKEND_FORM)
    if not host:
        raise SpecError(f"invalid backend {text!r}: missing host, expected {BACKEND_FORM}")
    check_host(host, f"backend {text!r}")
    if len(fields) > 5:
        raise SpecError(f"invalid backend {text!r}: too many fields, expected {BACKEND_FORM}")
    if not fields or fields[0] == "":
        if default_port is None:
            raise SpecError(
                f"backend {text!r} has no port and the listen port is unknown: "
                f"expected {BACKEND_FORM}"
            )
        port = default_port
    else:
        port = parse_port(fields[0], f"backend {text!r}")
    numbers: list[int] = []
    for name, value in zip(("MAXC", "HARD", "WEIGHT", "PRIO"), fields[1:], strict=False):
        if not is_digits(value):
            raise SpecError(
                f"invalid {name} {value!r} in backend {text!r}: expected a whole number >= 0"
            )
        numbers.append(int(value))
    return BackendSpec(host, port, *numbers)


def parse_listen(text: str) -> ListenSpec:
    """Turn Pen's ``[HOST:]PORT`` into a Twisted endpoint string; pass endpoint strings on."""
    text = text.strip()
    if text.startswith(ENDPOINT_PREFIXES):
        return ListenSpec(text, _endpoint_port(text))
    first = text.partition(":")[0]
    if _PLUGIN_NAME.fullmatch(first) and first != "localhost" and first in plugin_prefixes():
        # Only here: looking plugins up imports every endpoint plugin (and pyOpenSSL with
        # them), which penbal otherwise keeps out of a balancer without TLS.
        return ListenSpec(text, _endpoint_port(text))
    if text.startswith("/"):
        return ListenSpec("unix:" + text.replace(":", r"\:"), None)
    if is_digits(text):
        return ListenSpec(f"tcp:{parse_port(text, 'listen address')}", int(text))
    try:
        host, fields = _split_host(text, "listen address", LISTEN_FORM)
    except SpecError:
        raise
    if len(fields) != 1 or not host:
        raise SpecError(f"invalid listen address {text!r}: expected {LISTEN_FORM}")
    port = parse_port(fields[0], f"listen address {text!r}")
    check_host(host, f"listen address {text!r}")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise SpecError(
            f"invalid listen address {text!r}: the host must be an IP address, expected "
            f"{LISTEN_FORM}"
        ) from None
    kind = "tcp6" if ":" in host else "tcp"
    return ListenSpec(f"{kind}:{port}:interface={host.replace(':', chr(92) + ':')}", port)


def _endpoint_port(description: str) -> int | None:
    """The port of a tcp/tcp6/ssl/tls endpoint string, used as the backends' default port."""
    kind, _, rest = description.partition(":")
    if kind == "haproxy":
        return _endpoint_port(rest)
    if kind not in ("tcp", "tcp6", "ssl", "tls"):
        return None
    for field in re.split(r"(?<!\\):", rest):
        if field.startswith("port="):
            field = field[5:]
        elif kind == "tls":
            continue  # tls:DIR[:port=N]: the first field is the certificate directory
        if is_digits(field):
            return int(field)
    return 443 if kind == "tls" else None  # Twisted's default for tls:


_plugin_prefixes: frozenset[str] | None = None
_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]*")


def plugin_prefixes() -> frozenset[str]:
    """The prefixes of the server endpoint plugins installed (txtorcon's C{onion:}, say), so
    that any Twisted endpoint string is a LISTEN, not only the built-in kinds (cached)."""
    global _plugin_prefixes
    if _plugin_prefixes is None:
        from twisted.internet.interfaces import IStreamServerEndpointStringParser
        from twisted.plugin import getPlugins

        _plugin_prefixes = frozenset(
            str(getattr(p, "prefix", "")) for p in getPlugins(IStreamServerEndpointStringParser)
        ) - {""}
    return _plugin_prefixes
