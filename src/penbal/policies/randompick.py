# -*- test-case-name: tests.policies.test_randompick -*-
"""
Random: each new client goes to a backend drawn at random; the failover order is random too.

The randomness is the injected C{PolicyContext.random}, so tests can seed it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy


@implementer(ISelectionPolicy)
class RandomPolicy:
    """A uniformly random order of the backends below MAXC."""

    def __init__(self, rng: random.Random) -> None:
        self._random = rng

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        order = [b for b in candidates if b.below_soft_limit()]
        self._random.shuffle(order)
        return order

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass
