# -*- test-case-name: tests.policies.test_sticky -*-
"""
Sticky selection, Pen's default: a returning client goes back to the backend it used last.

A L{ClientTable} keyed by client IP remembers each client's backend.  A returning client may
exceed that backend's soft limit (MAXC) up to its hard limit; a new client, or one whose
backend is no longer a candidate, is placed by the base policy (round-robin unless Pen's
C{-W}, C{-h} or C{--prio} chose another).
"""

from __future__ import annotations

from collections.abc import Sequence

from zope.interface import implementer

from penbal.backend import Backend
from penbal.clienttable import ClientTable
from penbal.interfaces import ClientInfo, ISelectionPolicy, PolicyContext
from penbal.policies.roundrobin import RoundRobinPolicy, rotate_after


@implementer(ISelectionPolicy)
class StickyPolicy:
    """A client table in front of a base policy for new clients."""

    def __init__(self, table: ClientTable, base: ISelectionPolicy) -> None:
        self.table = table
        self.base = base

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        remembered = self.table.lookup(client.host)
        if remembered is not None:
            for backend in candidates:
                if backend.address == remembered and backend.below_hard_limit():
                    # Pen's failover from a server: the table order after it.
                    rest = [
                        b for b in rotate_after(candidates, backend.index)
                        if b is not backend and b.below_soft_limit()
                    ]
                    return [backend, *rest]
        return self.base.choose(client, candidates)

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        self.table.remember(client.host, backend.address)
        self.base.connected(client, backend)


def build_sticky(context: PolicyContext) -> StickyPolicy:
    """The C{sticky} plugin's policy: a client table of C{context.clients} entries, expiring
    after C{context.tracking} seconds, over C{context.settings["base"]} (round-robin if unset).
    """
    base = context.settings.get("base")
    if not ISelectionPolicy.providedBy(base):
        base = RoundRobinPolicy()
    assert ISelectionPolicy.providedBy(base)
    table = ClientTable(context.clock, context.clients, context.tracking)
    return StickyPolicy(table, base)
