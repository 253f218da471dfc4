# -*- test-case-name: tests.health.test_fitness -*-
"""
What one health check observed (L{CheckResult}) and what it means for new traffic (L{Verdict}).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from penbal.backend import Fitness


@dataclass(frozen=True)
class CheckResult:
    """
    One check of one backend.

    C{reachable} is true when the check talked to the backend (connected, and for the Galera
    check, read its status); C{error} says why not.  C{values} are what a protocol check read:
    for Galera, the C{wsrep%} global status and variables merged, names in lower case.
    """

    reachable: bool
    latency: float = 0.0
    error: str = ""
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """What one check means: the fitness it supports, and why (empty when fit)."""

    fitness: Fitness
    reason: str = ""


FIT = Verdict(Fitness.FIT)
