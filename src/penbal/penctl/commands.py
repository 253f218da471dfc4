# -*- test-case-name: tests.penctl.test_commands -*-
"""
Pen's control language (penctl) parsed: one line in, one command object or one error line out.

The same commands are read from the control socket and from the config file (C{-F}), so the
parser is pure and never raises: anything it cannot understand becomes a L{BadCommand} whose
message names what was wrong and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from penbal.address import BACKEND_FORM, SpecError, check_host, parse_backend
from penbal.backend import AdminState
from penbal.edges.acl import AclEntry, AclError, parse_network
from penbal.optiontypes import is_digits
from penbal.penctl.help import HELP
from penbal.penctl.language import (
    AddAclEntry,
    AddServer,
    BadCommand,
    Blank,
    ClearAcl,
    ClearServers,
    Command,
    Edit,
    Exit,
    Ignored,
    Parsed,
    Prompt,
    Query,
    Quit,
    Reload,
    RemoveServer,
    SetEmergency,
    SetHttp,
    SetPolicy,
    SetSelectionFlag,
    SetServer,
    SetServerState,
    SetStubborn,
    SetValue,
    ShowHelp,
    ShowMode,
    ShowRecent,
    ShowServer,
    ShowServers,
    ShowStatus,
    ShowValue,
    Unsupported,
    Write,
)
from penbal.penctl.words import (
    WordError,
    acl_number,
    arity,
    bounded_number,
    server_number,
    show,
)

__all__ = [
    "HELP",
    "AddAclEntry",
    "AddServer",
    "BadCommand",
    "Blank",
    "ClearAcl",
    "ClearServers",
    "Command",
    "Edit",
    "Exit",
    "Ignored",
    "Parsed",
    "Prompt",
    "Query",
    "Quit",
    "Reload",
    "RemoveServer",
    "SetEmergency",
    "SetHttp",
    "SetPolicy",
    "SetSelectionFlag",
    "SetServer",
    "SetServerState",
    "SetStubborn",
    "SetValue",
    "ShowHelp",
    "ShowMode",
    "ShowRecent",
    "ShowServer",
    "ShowServers",
    "ShowStatus",
    "ShowValue",
    "Unsupported",
    "Write",
    "parse_command",
]


# name: (coerce, lowest value, what the number means)
VALUES: dict[str, tuple[type, float, str]] = {
    "blacklist": (float, 0, "seconds"),
    "timeout": (float, 0.001, "seconds"),
    "tracking": (float, 0, "seconds"),
    "clients_max": (int, 1, "clients"),
    "conn_max": (int, 1, "connections"),
}
ACL_VALUES = ("client_acl", "control_acl")
SHOW_ONLY = ("listen", "control", "pid", "log", "policy", "emergency")
FLAGS = ("roundrobin", "hash", "weight", "prio")
SERVER_NUMBERS = {"max": "maxc", "hard": "hard", "weight": "weight", "prio": "prio"}
STATES = {"up": AdminState.UP, "down": AdminState.DOWN, "drain": AdminState.DRAIN}
# Pen commands whose "off" form is what penbal always does: accepted so Pen's files load.
PEN_NO_OPS = frozenset(
    ["no ascii", "no block", "no delayed_forward", "no abort_on_error", "no dummy",
     "no transparent", "no tcp_nodelay", "tcp_nodelay", "no web_stats",
     "no log", "tcp_fastclose off", "epoll", "poll", "select", "kqueue", "debug 0"]
)


def _server(words: list[str]) -> Command:
    form = "server N [up|down|drain | KEY VALUE ...]"
    if len(words) < 2:
        raise WordError(f"missing server number: expected {form}")
    index = server_number(words[1])
    rest = words[2:]
    if not rest:
        return ShowServer(index)
    if rest[0] in STATES:
        if len(rest) > 1:
            raise WordError(f"server {index} {rest[0]}: expected nothing after {rest[0]!r}")
        return SetServerState(index, STATES[rest[0]])
    if len(rest) % 2:
        raise WordError(f"server {index}: {show(rest[-1])} needs a value, expected {form}")
    fields: dict[str, object] = {}
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        if key in fields or (key in SERVER_NUMBERS and SERVER_NUMBERS[key] in fields):
            raise WordError(f"server {index}: {key!r} given twice")
        if key == "address":
            try:
                fields["host"] = check_host(value.strip("[]"), f"server {index} address")
            except SpecError as e:
                raise WordError(str(e)) from None
        elif key == "port":
            if not is_digits(value) or len(value) > 5 or not 1 <= int(value) <= 65535:
                raise WordError(f"invalid port {show(value)}: expected a number 1-65535")
            fields["port"] = int(value)
        elif key in SERVER_NUMBERS:
            fields[SERVER_NUMBERS[key]] = int(bounded_number(value, key, int, 0))
        elif key == "acl":
            fields["acl"] = acl_number(value)
        elif key == "blacklist":
            fields["blacklist"] = bounded_number(value, "blacklist time", float, 0)
        else:
            raise WordError(
                f"server {index}: unknown setting {show(key)}: expected up, down, drain, "
                "address, port, max, hard, weight, prio, acl or blacklist"
            )
    return SetServer(index, **fields)  # type: ignore[arg-type]


def _add(words: list[str]) -> Command:
    arity(words, 1, 1, f"add {BACKEND_FORM}")
    try:
        return AddServer(parse_backend(words[1], None))
    except SpecError as e:
        raise WordError(str(e)) from None


def _remove(words: list[str]) -> Command:
    arity(words, 1, 2, "remove N [now]")
    if len(words) == 3 and words[2] != "now":
        raise WordError(f"remove: expected 'now' after the server number, got {show(words[2])}")
    return RemoveServer(server_number(words[1]), now=len(words) == 3)


def _status(words: list[str]) -> Command:
    arity(words, 0, 1, "status [html|json|text]")
    form = words[1] if len(words) == 2 else "html"
    if form not in ("html", "json", "text"):
        raise WordError(f"status: unknown form {show(form)}: expected html, json or text")
    return ShowStatus(form)


#: A policy's plugin name: a letter or underscore, then letters, digits, C{_}, C{-} or C{.}
#: (C{galera-writer}); whether a plugin has it is the registry's to say.
_POLICY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")


def _policy(words: list[str]) -> Command:
    arity(words, 0, 2, "policy [NAME [BASE]]")
    if len(words) == 1:
        return ShowValue("policy")
    for word in words[1:]:
        if not _POLICY_NAME.match(word):
            raise WordError(f"invalid policy name {show(word)}: expected a plugin name "
                            "(letters, digits, _, - or ., as galera-writer)")
    if len(words) == 3 and words[1] != "sticky":
        raise WordError(f"policy {words[1]}: only sticky takes a policy for new clients")
    return SetPolicy(words[1], words[2] if len(words) == 3 else None)


def _value(words: list[str]) -> Command:
    name = words[0]
    arity(words, 0, 1, f"{name} [VALUE]")
    if len(words) == 1:
        return ShowValue(name)
    if name in ACL_VALUES:
        return SetValue(name, acl_number(words[1]))
    kind, low, unit = VALUES[name]
    return SetValue(name, bounded_number(words[1], f"{name} ({unit})", kind, low))


def _acl(words: list[str]) -> Command:
    form = "acl N permit|deny ADDR[/PREFIX] [NETMASK]"
    arity(words, 3, 4, form)
    number = acl_number(words[1])
    if words[2] not in ("permit", "deny"):
        raise WordError(f"acl {number}: expected permit or deny, got {show(words[2])}")
    if words[3] == "country":
        raise WordError("acl: country entries need GeoIP, which penbal does not have")
    try:
        network = parse_network(words[3], words[4] if len(words) == 5 else None)
    except AclError as e:
        raise WordError(str(e)) from None
    return AddAclEntry(number, AclEntry(words[2] == "permit", network))


def _emergency(words: list[str]) -> Command:
    arity(words, 0, 1, "emergency [HOST:PORT]")
    if len(words) == 1:
        return ShowValue("emergency")
    try:
        return SetEmergency(parse_backend(words[1], None))
    except SpecError as e:
        raise WordError(str(e)) from None


def _write(words: list[str]) -> Command:
    if len(words) > 2:
        raise WordError("write: expected one FILE (no spaces), or - to print the configuration")
    return Write(words[1] if len(words) == 2 else None)


def _recent(words: list[str]) -> Command:
    arity(words, 0, 1, "recent [SECONDS]")
    if len(words) == 1:
        return ShowRecent()
    return ShowRecent(bounded_number(words[1], "recent (seconds)", float, 0))


def _no(words: list[str]) -> Command:
    if len(words) < 2:
        raise WordError("'no' needs a setting: expected no roundrobin, hash, stubborn, ...")
    what = words[1]
    if what in FLAGS or what == "stubborn" or what == "servers" or what == "emergency":
        arity(words, 1, 1, f"no {what}")
        if what == "stubborn":
            return SetStubborn(False)
        if what == "servers":
            return ClearServers()
        if what == "emergency":
            return SetEmergency(None)
        return SetSelectionFlag(what, False)
    if what == "http":
        arity(words, 1, 1, "no http")
        return SetHttp(False)
    if what == "acl":
        arity(words, 2, 2, "no acl N")
        return ClearAcl(acl_number(words[2]))
    raise WordError(f"unknown setting {show(what)} after 'no' (try 'help')")


def _simple(command: Command, form: str) -> Callable[[list[str]], Command]:
    def parse(words: list[str]) -> Command:
        arity(words, 0, 0, form)
        return command

    return parse


def _flag(words: list[str]) -> Command:
    arity(words, 0, 0, words[0])
    if words[0] == "stubborn":
        return SetStubborn(True)
    return SetSelectionFlag(words[0], True)


def _show_only(words: list[str]) -> Command:
    if words[0] == "log" and len(words) > 1:
        arity(words, 0, 1, "log [FILE]")
        return Unsupported(
            " ".join(words),
            "log FILE is not supported: the access log is set at start-up (--access-log)",
        )
    arity(words, 0, 0, words[0])
    return ShowValue(words[0])


def _http(words: list[str]) -> Command:
    arity(words, 0, 0, "http")
    return SetHttp(True)


def _pen_only(words: list[str]) -> Command:
    """Pen settings that penbal does not have; Pen's C{write} puts them in its files."""
    name = words[0]
    if name == "ascii":
        arity(words, 0, 0, "ascii")
        reason = "ascii (Pen's debugging dumps) is not supported"
    elif name == "debug":
        arity(words, 1, 1, "debug N")
        if not is_digits(words[1]):
            raise WordError(f"invalid debug level {show(words[1])}: expected a number from 0")
        reason = "debug N is not supported: use twist --log-level debug"
    elif name == "web_stats":
        arity(words, 1, 1, "web_stats FILE")
        reason = "web_stats FILE is not supported: penbal serves its status with --http"
    else:  # tcp_fastclose; 'tcp_fastclose off', what penbal does, is a no-op
        arity(words, 1, 1, "tcp_fastclose off|in|out|both")
        if words[1] not in ("in", "out", "both"):
            raise WordError(
                f"tcp_fastclose: expected off, in, out or both, got {show(words[1])}"
            )
        reason = f"tcp_fastclose {words[1]} is not supported: penbal relays half-closes"
    return Unsupported(" ".join(words), reason)


PARSERS: dict[str, Callable[[list[str]], Command]] = {
    "servers": _simple(ShowServers(), "servers"),
    "server": _server,
    "add": _add,
    "remove": _remove,
    "status": _status,
    "mode": _simple(ShowMode(), "mode"),
    "policy": _policy,
    "emergency": _emergency,
    "acl": _acl,
    "recent": _recent,
    "write": _write,
    "reload": _simple(Reload(), "reload"),
    "exit": _simple(Exit(), "exit"),
    "help": _simple(ShowHelp(), "help"),
    "prompt": _simple(Prompt(), "prompt"),
    "quit": _simple(Quit(), "quit"),
    "no": _no,
    "stubborn": _flag,
    "http": _http,
    **{name: _pen_only for name in ("ascii", "debug", "web_stats", "tcp_fastclose")},
    **{name: _flag for name in FLAGS},
    **{name: _value for name in (*VALUES, *ACL_VALUES)},
    **{name: _show_only for name in SHOW_ONLY if name not in ("policy", "emergency")},
}


def parse_command(line: str | bytes) -> Parsed:
    """One line of the control language as a command, or a L{BadCommand}; never raises."""
    try:
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        words = line.split()
        if not words or words[0].startswith("#"):
            return Blank()
        if " ".join(words) in PEN_NO_OPS:
            return Ignored(" ".join(words))
        parser = PARSERS.get(words[0])
        if parser is None:
            return BadCommand(f"unknown command {show(words[0])} (try 'help')")
        return parser(words)
    except WordError as e:
        return BadCommand(str(e))
    except Exception as e:  # a bug here must not take the control port down
        return BadCommand(
            f"cannot parse this line ({type(e).__name__}): please report it", internal=True
        )

