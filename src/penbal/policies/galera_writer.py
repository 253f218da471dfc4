# -*- test-case-name: tests.policies.test_galera_writer -*-
"""
Galera single writer: every connection goes to one node, so that writes never conflict in
certification.  The writer is the candidate with the lowest PRIO, then the first in the table:
two penbal instances with the same configuration and the same view of the nodes agree on it.

It changes only when the writer stops being a candidate (unfit, drained, blacklisted, at its
HARD limit).  When a better node comes back the policy fails back to it, unless the setting
C{failback} is false (C{--no-failback}): then the current writer stays while it is a candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.logger import Logger
from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy, PolicyContext

log = Logger(namespace="penbal.policy")


def writer_order(candidates: Sequence[Backend]) -> list[Backend]:
    """C{candidates} in the order they become writer: PRIO, then table position."""
    return sorted(candidates, key=lambda b: (b.spec.prio, b.index))


@implementer(ISelectionPolicy)
class GaleraWriterPolicy:
    """All clients to one writer; the rest of the order is the failover order."""

    def __init__(self, failback: bool = True) -> None:
        self.failback = failback
        self.writer: Backend | None = None

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        order = writer_order(candidates)
        if not order:
            return order
        current = self.writer
        if not self.failback and current is not None and current in order:
            order.remove(current)
            order.insert(0, current)
        self._elect(order[0])
        return order

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        # A writer that refused a connect is blacklisted, so the next choose() moves on.
        pass

    def _elect(self, backend: Backend) -> None:
        if backend is self.writer:
            return
        previous = self.writer
        self.writer = backend
        log.info(
            "galera writer is now {writer} (was {previous})",
            penbal_event="writer",
            writer=backend.address,
            previous=previous.address if previous is not None else "none",
        )


def build_galera_writer(context: PolicyContext) -> GaleraWriterPolicy:
    """The policy with C{settings["failback"]} (default true; false with --no-failback)."""
    return GaleraWriterPolicy(failback=bool(context.settings.get("failback", True)))
