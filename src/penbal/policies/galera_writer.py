# -*- test-case-name: tests.policies.test_galera_writer -*-
"""
Galera single writer: every connection goes to one node, so that writes never conflict in
certification.

The writer is the candidate with the lowest PRIO, then the lowest C{wsrep_local_index} (the
node's position in the cluster view: every member of one view reports it alike, so instances
that check the same cluster agree whatever order they were given the nodes in), then the
lowest address.  A node whose health check reads no index (no Galera check) comes after those
that report one.  The policy reads the index from the values the health check keeps with each
backend (C{Backend.health.details}); it knows nothing of the check itself.

It changes when the writer stops being a candidate (unfit, drained, blacklisted, at its HARD
limit) or a better node appears.  With the setting C{failback} false (C{--no-failback}) the
current writer stays while it is a candidate: fewer changes, but then the writer depends on
this instance's history, and two instances that saw different histories may disagree.  A
writer named before the health check has read every candidate (right after start-up, when the
indexes are not known yet) is provisional even then: the first choice made with every
candidate checked replaces it, so that a new instance does not lock in the lowest address.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.logger import Logger
from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy, PolicyContext

log = Logger(namespace="penbal.policy")

# The health value the cluster agrees on: the node's position in the current view.
VIEW_INDEX = "wsrep_local_index"
# Sorts after every real index: nodes that report none come last.
NO_INDEX = 1 << 62
# The health detail a check leaves on every backend it has read (see penbal.health.scheduler).
CHECKED = "checked_at"


def view_index(backend: Backend) -> int:
    """The node's C{wsrep_local_index} as its health check last read it, or L{NO_INDEX}."""
    value = backend.health.details.get(VIEW_INDEX)
    try:
        index = int(str(value))
    except ValueError:
        return NO_INDEX
    return index if index >= 0 else NO_INDEX


def writer_key(backend: Backend) -> tuple[int, int, str, int]:
    """What ranks a writer: PRIO, then the view index, then the address (host, then port)."""
    return (backend.spec.prio, view_index(backend), backend.spec.host, backend.spec.port)


def writer_order(candidates: Sequence[Backend]) -> list[Backend]:
    """C{candidates} in the order they become writer (see L{writer_key})."""
    return sorted(candidates, key=writer_key)


@implementer(ISelectionPolicy)
class GaleraWriterPolicy:
    """All clients to one writer; the rest of the order is the failover order."""

    def __init__(self, failback: bool = True, checked: bool = False) -> None:
        self.failback = failback
        #: Whether a health check runs (and will leave each backend's index in its details).
        self.checked = checked
        self.writer: Backend | None = None
        #: The writer was named before every candidate had been checked.
        self.provisional = False

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        order = writer_order(candidates)
        if not order:
            return order
        current = self.writer
        keep = not self.failback and not self.provisional
        if keep and current is not None and current in order:
            order.remove(current)
            order.insert(0, current)
        self._elect(order[0])
        self.provisional = self.checked and any(CHECKED not in b.health.details for b in order)
        return order

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        # A writer that refused a connect is blacklisted, so the next choose() moves on.
        pass

    def _elect(self, backend: Backend) -> None:
        if backend is self.writer:
            return
        previous = self.writer
        self.writer = backend
        index = view_index(backend)
        log.info(
            "galera writer is now {writer} (was {previous}; wsrep_local_index {index})",
            penbal_event="writer",
            writer=backend.address,
            previous=previous.address if previous is not None else "none",
            index=index if index != NO_INDEX else "unknown",
        )


def build_galera_writer(context: PolicyContext) -> GaleraWriterPolicy:
    """The policy with C{settings["failback"]} (default true; false with --no-failback)."""
    return GaleraWriterPolicy(failback=bool(context.settings.get("failback", True)),
                              checked=bool(context.settings.get("checked", False)))
