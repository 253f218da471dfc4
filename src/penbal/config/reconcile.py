# -*- test-case-name: tests.config.test_reconcile -*-
"""
Make the running balancer match a L{Configuration}, changing only what differs.

Backends are matched by identity (an entry captured from the running table) or, for a config
file, by address; a matched backend keeps its live connections, counters, blacklisting and
drain state.  A backend that is no longer wanted drains out of the table; one that is wanted
and missing is added; the table is numbered in the configuration's order (a written file's
server numbers come back, whatever order the command line named its backends in).  The
only step that can fail (building a policy) runs before anything changes, so a configuration
applies whole or not at all.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from penbal.backend import AdminState, Backend
from penbal.config.model import BackendEntry, Configuration
from penbal.edges.acl import ACL_COUNT
from penbal.interfaces import ISelectionPolicy
from penbal.policies.registry import PolicyError, make_policy
from penbal.runtime import Runtime

OPERATOR_BLACKLIST = "blacklisted by the operator"


class ReconcileError(Exception):
    """The configuration cannot be applied; nothing was changed. One line."""


def capture(runtime: Runtime) -> Configuration:
    """The running configuration, each backend entry tied to its live backend."""
    balancer = runtime.balancer
    pool = balancer.pool
    settings = balancer.settings
    entries = tuple(
        BackendEntry(
            backend.spec,
            runtime.server_acl(backend),
            backend.admin,
            None,
            backend,
            backend in pool.retiring,
        )
        for backend in pool
    )
    return Configuration(
        backends=entries,
        policy=runtime.policy,
        stubborn=settings.stubborn,
        timeout=settings.timeout,
        blacklist=settings.blacklist,
        conn_max=settings.max_connections,
        tracking=runtime.context.tracking,
        clients_max=runtime.context.clients,
        emergency=settings.emergency.spec if settings.emergency is not None else None,
        acls=tuple(tuple(runtime.acls[number]) for number in range(ACL_COUNT)),
        client_acl=runtime.client_acl,
        control_acl=runtime.control_acl,
        http=runtime.http,
    )


def match(desired: Configuration, runtime: Runtime) -> Configuration:
    """Tie a config file's entries to running backends with the same address, in order."""
    pool = runtime.balancer.pool
    taken = {id(entry.backend) for entry in desired.backends if entry.backend is not None}
    free = [b for b in pool if b not in pool.retiring and id(b) not in taken]
    entries = []
    for entry in desired.backends:
        if entry.backend is None:
            for backend in free:
                if backend.address == entry.spec.address:
                    free.remove(backend)
                    entry = replace(entry, backend=backend)
                    break
        entries.append(entry)
    return replace(desired, backends=tuple(entries))


def _policy(runtime: Runtime, desired: Configuration) -> tuple[ISelectionPolicy | None, Any]:
    """Build the new policy if anything it is built from changed (may raise)."""
    context = replace(runtime.context, clients=desired.clients_max, tracking=desired.tracking)
    if desired.policy == runtime.policy and context == runtime.context:
        return None, context
    try:
        return make_policy(desired.policy, context, dict(runtime.policies())), context
    except PolicyError as e:
        raise ReconcileError(str(e)) from None


def remove_now(runtime: Runtime, backend: Backend) -> str:
    """Take C{backend} out of the table at once, closing its connections here (its number
    stays on it, the others are renumbered); returns the change, in words."""
    busy = backend.counters.active  # live here, or in the workers (--workers N)
    runtime.balancer.pool.remove(backend)
    runtime.set_server_acl(backend, 0)
    for front in list(backend.live):
        front.ended_by = front.ended_by or "backend removed by the operator"
        front.close()
    closed = f", {busy} connections closed" if busy else ""
    return f"removed server {backend.address}{closed}"


def _remove_unwanted(runtime: Runtime, desired: Configuration, close: bool) -> list[str]:
    pool = runtime.balancer.pool
    wanted = {id(entry.backend) for entry in desired.backends if entry.backend is not None}
    changes = []
    for gone in [b for b in runtime.server_acls if b not in pool]:  # drained out since
        runtime.set_server_acl(gone, 0)
    for backend in list(pool):
        if id(backend) in wanted:
            continue
        busy = backend.counters.active  # live here, or in the workers (--workers N)
        if close or not busy:
            changes.append(remove_now(runtime, backend))
            if close:
                for follower in runtime.removed_now:
                    follower(backend.index, backend.address)
        elif backend not in pool.retiring:
            pool.retire(backend)
            changes.append(
                f"server {backend.index} {backend.address} drains, then leaves the table "
                f"({busy} connections left)"
            )
    return changes


def _add_missing(runtime: Runtime, desired: Configuration) -> list[BackendEntry]:
    """The desired entries, each tied to a live backend: those missing are added now."""
    pool = runtime.balancer.pool
    return [
        entry if entry.backend is not None
        else replace(entry, backend=pool.add(entry.spec), added=True)
        for entry in desired.backends
    ]


def _arrange(runtime: Runtime, entries: list[BackendEntry]) -> list[str]:
    """Number the table as C{entries} are ordered (a config file's order wins).

    Backends draining out of the table keep their places; the others fill the remaining
    places in the order of C{entries}.
    """
    pool = runtime.balancer.pool
    wanted = [entry.backend for entry in entries if entry.backend is not None]
    ids = {id(backend) for backend in wanted}
    following = iter(wanted)
    order = [next(following) if id(backend) in ids else backend for backend in pool]
    if order == list(pool):
        return []
    pool.reorder(order)
    table = ", ".join(f"{backend.index} {backend.address}" for backend in order)
    return [f"servers renumbered: {table}"]


def _apply_entry(runtime: Runtime, entry: BackendEntry, now: float) -> list[str]:
    backend = entry.backend
    assert backend is not None  # tied by match() or added by _add_missing()
    changes = []
    if entry.added:
        changes.append(f"added server {backend.index} {entry.spec.format()}")
    elif backend.spec != entry.spec:
        changes.append(f"server {backend.index}: {backend.spec.format()} -> {entry.spec.format()}")
        backend.spec = entry.spec
    if entry.admin is not None and entry.admin is not backend.admin and not entry.retiring:
        backend.admin = entry.admin
        if entry.admin is AdminState.UP:
            backend.clear_blacklist()
        word = {"up": "up", "down": "down", "drain": "draining"}[entry.admin.value]
        changes.append(f"server {backend.index} {backend.address} is now {word}")
    if runtime.server_acl(backend) != entry.acl:
        runtime.set_server_acl(backend, entry.acl)
        changes.append(f"server {backend.index} {backend.address} uses access list {entry.acl}")
    if entry.blacklist is not None:
        if entry.blacklist > 0:
            backend.blacklisted_until = now + entry.blacklist
            backend.blacklist_reason = OPERATOR_BLACKLIST
            changes.append(f"server {backend.index} blacklisted for {entry.blacklist:g}s")
        else:
            backend.clear_blacklist()
            changes.append(f"server {backend.index} is no longer blacklisted")
    return changes


def _apply_settings(runtime: Runtime, desired: Configuration) -> list[str]:
    settings = runtime.balancer.settings
    changes = []
    for name, attribute, value in (
        ("stubborn", "stubborn", desired.stubborn),
        ("timeout", "timeout", desired.timeout),
        ("blacklist", "blacklist", desired.blacklist),
        ("conn_max", "max_connections", desired.conn_max),
    ):
        if getattr(settings, attribute) != value:
            setattr(settings, attribute, value)
            changes.append(f"{name} {value:g}" if not isinstance(value, bool) else
                           (name if value else f"no {name}"))
    current = settings.emergency.spec if settings.emergency is not None else None
    if current != desired.emergency:
        spec = desired.emergency
        settings.emergency = Backend(spec, -1) if spec is not None else None
        changes.append(f"emergency {spec.address}" if spec is not None else "no emergency")
    for number in range(ACL_COUNT):
        acl = runtime.acls[number]
        if tuple(acl) != desired.acls[number]:
            acl.clear()
            for entry in desired.acls[number]:
                acl.add(entry)
            changes.append(f"access list {number} has {len(acl)} entries")
    if runtime.client_acl != desired.client_acl:
        runtime.set_client_acl(desired.client_acl)
        changes.append(f"client_acl {desired.client_acl}")
    if runtime.control_acl != desired.control_acl:
        runtime.control_acl = desired.control_acl
        changes.append(f"control_acl {desired.control_acl}")
    if runtime.http != desired.http:
        runtime.set_http(desired.http)
        changes.append("http" if desired.http else "no http")
    return changes


def reconcile(runtime: Runtime, desired: Configuration, close_removed: bool = False) -> list[str]:
    """Apply C{desired}; return one line per change. L{ReconcileError}: nothing changed."""
    policy, context = _policy(runtime, desired)
    now = runtime.now()
    changes = _remove_unwanted(runtime, desired, close_removed)
    entries = _add_missing(runtime, desired)
    renumbered = _arrange(runtime, entries)
    for entry in entries:
        changes.extend(_apply_entry(runtime, entry, now))
    changes.extend(renumbered)
    changes.extend(_apply_settings(runtime, desired))
    if policy is not None:
        runtime.balancer.policy = policy
        if desired.policy != runtime.policy:
            changes.append(f"policy {desired.policy.describe()}")
        if context.clients != runtime.context.clients:
            changes.append(f"clients_max {context.clients}")
        if context.tracking != runtime.context.tracking:
            changes.append(f"tracking {context.tracking:g}")
        runtime.policy = desired.policy
        runtime.context = context
    for relay in runtime.relays:
        resume = getattr(relay, "limits_changed", None)
        if resume is not None:
            resume()
    return changes
