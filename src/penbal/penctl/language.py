# -*- test-case-name: tests.penctl.test_commands -*-
"""
The commands of Pen's control language (penctl) as plain data: what a parsed line means.

L{Query} commands read; L{Edit} commands change the configuration (and are logged).
L{penbal.penctl.commands} turns a line into one of these.
"""

from __future__ import annotations

from dataclasses import dataclass

from penbal.address import BackendSpec
from penbal.backend import AdminState
from penbal.edges.acl import AclEntry


@dataclass(frozen=True)
class Command:
    """Something the control language can say."""


@dataclass(frozen=True)
class Query(Command):
    """A command that changes nothing in the balancer's configuration."""


@dataclass(frozen=True)
class Edit(Command):
    """A command that changes the configuration: applied to the running balancer, logged."""


@dataclass(frozen=True)
class BadCommand:
    """A line that is not a valid command; C{message} is the one-line answer.

    C{internal} marks the parser's own failure (a bug) rather than a bad line.
    """

    message: str
    internal: bool = False


# -- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blank(Query):
    """An empty line or a C{#} comment."""


@dataclass(frozen=True)
class ShowServers(Query):
    """C{servers}: one line per backend, as Pen prints them."""


@dataclass(frozen=True)
class ShowServer(Query):
    """C{server N}: that backend's line."""

    index: int


@dataclass(frozen=True)
class ShowStatus(Query):
    """C{status [html|json|text]}: Pen prints HTML; json is the HTTP C{/status.json}."""

    form: str = "html"


@dataclass(frozen=True)
class ShowMode(Query):
    """C{mode}: the selection flags, as Pen prints them, and the policy."""


@dataclass(frozen=True)
class ShowValue(Query):
    """A command given without its value prints the current one (C{blacklist}, C{listen} ...)."""

    name: str


@dataclass(frozen=True)
class ShowRecent(Query):
    """C{recent [S]}: clients seen in the last S seconds (default 300)."""

    seconds: float = 300.0


@dataclass(frozen=True)
class ShowHelp(Query):
    """C{help}: the commands, one per line."""


@dataclass(frozen=True)
class Write(Query):
    """C{write [FILE]}: the running configuration as commands; C{-} sends it back instead."""

    path: str | None = None


@dataclass(frozen=True)
class Reload(Query):
    """C{reload}: re-read the config file, as SIGHUP does."""


@dataclass(frozen=True)
class Exit(Query):
    """C{exit}: stop penbal gracefully, as SIGTERM does."""


@dataclass(frozen=True)
class Prompt(Query):
    """C{prompt}: keep this control connection open for more commands (as HAProxy's)."""


@dataclass(frozen=True)
class Quit(Query):
    """C{quit}: close this control connection."""


@dataclass(frozen=True)
class Ignored(Query):
    """A Pen command that means nothing to penbal (C{no ascii}, C{debug 0} ...): accepted."""

    text: str


@dataclass(frozen=True)
class Unsupported(Query):
    """A Pen setting penbal cannot honour (C{log FILE}, C{web_stats FILE}, C{debug N} ...).

    The control port refuses it with C{reason}; a config file (as Pen writes them) loads
    with the line skipped and C{reason} logged.
    """

    text: str
    reason: str


# -- edits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetServer(Edit):
    """C{server N [address A] [port P] [max M] [hard H] [weight W] [prio P] [acl A] [blacklist T]}.

    Pen's keys; C{blacklist T} keeps the backend out for T seconds (0 lets it back in).
    """

    index: int
    host: str | None = None
    port: int | None = None
    maxc: int | None = None
    hard: int | None = None
    weight: int | None = None
    prio: int | None = None
    acl: int | None = None
    blacklist: float | None = None


@dataclass(frozen=True)
class SetServerState(Edit):
    """C{server N up|down|drain}."""

    index: int
    state: AdminState


@dataclass(frozen=True)
class AddServer(Edit):
    """C{add HOST:PORT[:MAXC[:HARD[:WEIGHT[:PRIO]]]]}: a new backend at the end of the table."""

    spec: BackendSpec


@dataclass(frozen=True)
class RemoveServer(Edit):
    """C{remove N [now]}: a busy backend drains first, unless C{now} (its connections close)."""

    index: int
    now: bool = False


@dataclass(frozen=True)
class ClearServers(Edit):
    """C{no servers}: empty the table (what C{write} starts the table with)."""


@dataclass(frozen=True)
class SetPolicy(Edit):
    """C{policy NAME [BASE]}: a policy plugin by name; C{sticky} places new clients by BASE."""

    name: str
    base: str | None = None


@dataclass(frozen=True)
class SetSelectionFlag(Edit):
    """Pen's C{roundrobin}, C{hash}, C{weight}, C{prio} and their C{no} forms."""

    flag: str
    on: bool


@dataclass(frozen=True)
class SetStubborn(Edit):
    """C{stubborn} / C{no stubborn}."""

    on: bool


@dataclass(frozen=True)
class SetHttp(Edit):
    """C{http} / C{no http}: HTTP mode (C{-H}), X-Forwarded-For added to new clients' requests."""

    on: bool


@dataclass(frozen=True)
class SetValue(Edit):
    """C{blacklist T}, C{timeout T}, C{tracking T}, C{clients_max N}, C{conn_max N}, C{*_acl N}."""

    name: str
    value: float


@dataclass(frozen=True)
class AddAclEntry(Edit):
    """C{acl N permit|deny ADDR [MASK]}: append to access list N."""

    number: int
    entry: AclEntry


@dataclass(frozen=True)
class ClearAcl(Edit):
    """C{no acl N}: access list N becomes empty (permits everyone)."""

    number: int


@dataclass(frozen=True)
class SetEmergency(Edit):
    """C{emergency HOST:PORT} / C{no emergency}."""

    spec: BackendSpec | None


Parsed = Command | BadCommand
