# -*- test-case-name: tests.config.test_edit -*-
"""
One control command applied to a L{Configuration}: a pure function, so that the control
socket, the config file and a reload all mean the same thing by each command.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from penbal.address import BackendSpec
from penbal.config.model import BackendEntry, Configuration
from penbal.penctl.commands import (
    AddAclEntry,
    AddServer,
    ClearAcl,
    ClearServers,
    Edit,
    RemoveServer,
    SetEmergency,
    SetHttp,
    SetPolicy,
    SetSelectionFlag,
    SetServer,
    SetServerState,
    SetStubborn,
    SetValue,
)
from penbal.policies.choice import PolicyChoice, PolicyChoiceError, choose_policy

ALGORITHMS = ("hash", "weight", "prio")


class EditError(ValueError):
    """The command cannot apply to this configuration; the message is one line."""


def pen_flags(choice: PolicyChoice) -> tuple[bool, str | None]:
    """Pen's view of a policy: (roundrobin, the algorithm for new clients or None)."""
    if choice.name == "sticky":
        return False, choice.base
    if choice.name in ALGORITHMS:
        return True, choice.name
    return True, None


def mode_line(config: Configuration) -> str:
    """Pen's C{mode} answer: C{no hash roundrobin no stubborn no weight no prio}."""
    roundrobin, algorithm = pen_flags(config.policy)
    flags = [
        ("hash", algorithm == "hash"),
        ("roundrobin", roundrobin),
        ("stubborn", config.stubborn),
        ("weight", algorithm == "weight"),
        ("prio", algorithm == "prio"),
    ]
    return " ".join(name if on else f"no {name}" for name, on in flags)


def _entry(config: Configuration, index: int, adds: bool = False) -> BackendEntry:
    count = len(config.backends)
    if index >= count:
        have = f"servers 0 to {count - 1}" if count else "no servers"
        hint = f" ('server {index} address A port P' adds it)" if adds and index == count else ""
        raise EditError(f"no server {index}: the table has {have}{hint}")
    entry = config.backends[index]
    if entry.retiring:
        raise EditError(
            f"server {index} is being removed (draining); use 'remove {index} now' to drop it"
        )
    return entry


def _replace_entry(config: Configuration, index: int, entry: BackendEntry) -> Configuration:
    backends = list(config.backends)
    backends[index] = entry
    return replace(config, backends=tuple(backends))


def _set_server(config: Configuration, edit: SetServer) -> Configuration:
    if edit.index == len(config.backends) and edit.host is not None and edit.port is not None:
        # The next number with an address and a port: a new server at the end of the table.
        # Pen's write lists its table this way ('server 0 acl 0 address A port P max M ...').
        spec = BackendSpec(edit.host, edit.port)
        config = replace(config, backends=(*config.backends, BackendEntry(spec)))
    entry = _entry(config, edit.index, adds=True)
    spec_changes = {
        name: value
        for name in ("host", "port", "maxc", "hard", "weight", "prio")
        if (value := getattr(edit, name)) is not None
    }
    spec = replace(entry.spec, **spec_changes)
    entry = replace(
        entry,
        spec=spec,
        acl=entry.acl if edit.acl is None else edit.acl,
        blacklist=entry.blacklist if edit.blacklist is None else edit.blacklist,
    )
    return _replace_entry(config, edit.index, entry)


def _selection_flag(config: Configuration, edit: SetSelectionFlag) -> Configuration:
    roundrobin, algorithm = pen_flags(config.policy)
    if edit.flag == "roundrobin":
        if roundrobin == edit.on:
            return config
        roundrobin = edit.on
    elif edit.on:
        algorithm = edit.flag
    elif algorithm == edit.flag:
        algorithm = None
    else:
        return config
    try:
        choice = choose_policy(
            None,
            roundrobin=roundrobin,
            hash=algorithm == "hash",
            weight=algorithm == "weight",
            prio=algorithm == "prio",
        )
    except PolicyChoiceError as e:
        raise EditError(str(e)) from None
    return replace(config, policy=choice)


def _set_policy(config: Configuration, edit: SetPolicy, policies: Collection[str]) -> Configuration:
    for name in filter(None, (edit.name, edit.base)):
        if name not in policies:
            raise EditError(
                f"unknown policy {name!r}: expected one of {', '.join(sorted(policies))}"
            )
    return replace(config, policy=PolicyChoice(edit.name, edit.base))


def _set_value(config: Configuration, edit: SetValue) -> Configuration:
    name, value = edit.name, edit.value
    if name == "clients_max":
        return replace(config, clients_max=int(value))
    if name == "conn_max":
        return replace(config, conn_max=int(value))
    if name == "client_acl":
        return replace(config, client_acl=int(value))
    if name == "control_acl":
        return replace(config, control_acl=int(value))
    if name == "blacklist":
        return replace(config, blacklist=float(value))
    if name == "timeout":
        return replace(config, timeout=float(value))
    if name == "tracking":
        return replace(config, tracking=float(value))
    raise EditError(f"unknown setting {name!r}")


def apply_edit(config: Configuration, edit: Edit, policies: Collection[str]) -> Configuration:
    """The configuration after C{edit}; L{EditError} if it cannot apply (nothing changes)."""
    if isinstance(edit, SetServer):
        return _set_server(config, edit)
    if isinstance(edit, SetServerState):
        entry = _entry(config, edit.index)
        return _replace_entry(config, edit.index, replace(entry, admin=edit.state))
    if isinstance(edit, AddServer):
        return replace(config, backends=(*config.backends, BackendEntry(edit.spec)))
    if isinstance(edit, RemoveServer):
        if edit.index < len(config.backends) and config.backends[edit.index].retiring:
            if not edit.now:
                raise EditError(
                    f"server {edit.index} is already being removed; 'remove {edit.index} now' "
                    "drops it and closes its connections"
                )
        else:
            _entry(config, edit.index)
        backends = config.backends[: edit.index] + config.backends[edit.index + 1 :]
        return replace(config, backends=backends)
    if isinstance(edit, ClearServers):
        return replace(config, backends=tuple(e for e in config.backends if e.retiring))
    if isinstance(edit, SetPolicy):
        return _set_policy(config, edit, policies)
    if isinstance(edit, SetSelectionFlag):
        return _selection_flag(config, edit)
    if isinstance(edit, SetStubborn):
        return replace(config, stubborn=edit.on)
    if isinstance(edit, SetHttp):
        return replace(config, http=edit.on)
    if isinstance(edit, SetValue):
        return _set_value(config, edit)
    if isinstance(edit, AddAclEntry):
        acls = list(config.acls)
        acls[edit.number] = (*acls[edit.number], edit.entry)
        return replace(config, acls=tuple(acls))
    if isinstance(edit, ClearAcl):
        acls = list(config.acls)
        acls[edit.number] = ()
        return replace(config, acls=tuple(acls))
    if isinstance(edit, SetEmergency):
        return replace(config, emergency=edit.spec)
    raise EditError(f"{type(edit).__name__} is not a configuration change")
