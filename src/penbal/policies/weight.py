# -*- test-case-name: tests.policies.test_weight -*-
"""
Weighted least-connections, Pen's C{-W}: the backend with the lowest connections/weight.

The load is Pen's integer C{256 * active // weight}; ties go to the lower table position.
A backend of weight 0 is never the first choice; it comes last in the failover order.  If no
candidate has a weight (all 0, Pen's default), every backend counts as weight 1, which makes
this plain least-connections (Pen would find no server).
"""

from __future__ import annotations

from collections.abc import Sequence

from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy

WEIGHT_FACTOR = 256


def weighted_load(backend: Backend, weight: int) -> int:
    """Pen's load figure: C{WEIGHT_FACTOR * active // weight} (C{weight} > 0)."""
    return WEIGHT_FACTOR * backend.counters.active // weight


def weight_order(candidates: Sequence[Backend]) -> list[Backend]:
    """Weighted backends by rising load, then the weight-0 ones in table order."""
    weighted = [b for b in candidates if b.spec.weight > 0]
    if not weighted:
        return sorted(candidates, key=lambda b: (weighted_load(b, 1), b.index))
    unweighted = [b for b in candidates if b.spec.weight <= 0]
    ranked = sorted(weighted, key=lambda b: (weighted_load(b, b.spec.weight), b.index))
    return ranked + sorted(unweighted, key=lambda b: b.index)


@implementer(ISelectionPolicy)
class WeightPolicy:
    """Lowest connections per unit of weight first, among backends below MAXC."""

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        return [b for b in weight_order(candidates) if b.below_soft_limit()]

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass
