# -*- test-case-name: tests.health.test_hysteresis -*-
"""
Rise/fall hysteresis for one backend: a backend gets worse only after C{fall} checks in a row
that are worse, and better only after C{rise} checks in a row that are better.

Levels are ordered FIT > LAST_RESORT > UNFIT.  After C{fall} worse checks the backend takes
the best level all of them support (likewise, after C{rise} better checks, the worst), so a
level is entered only when that many checks in a row were at least that bad (or good).
"""

from __future__ import annotations

from dataclasses import dataclass

from penbal.backend import Fitness
from penbal.health.result import Verdict

RANK = {Fitness.UNFIT: 0, Fitness.LAST_RESORT: 1, Fitness.FIT: 2}


@dataclass(frozen=True)
class Pending:
    """A change under way: how many checks in a row point to it, of how many needed."""

    direction: str  # "down" or "up"
    count: int
    needed: int
    latest: Verdict


class Hysteresis:
    """The current verdict of one backend, changed only by streaks of checks."""

    def __init__(self, rise: int, fall: int) -> None:
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be at least 1, got {rise} and {fall}")
        self.rise = rise
        self.fall = fall
        self.current: Verdict | None = None
        self._streak: list[Verdict] = []

    @property
    def pending(self) -> Pending | None:
        """The change that the latest checks point to, if any."""
        if not self._streak or self.current is None:
            return None
        latest = self._streak[-1]
        if RANK[latest.fitness] < RANK[self.current.fitness]:
            return Pending("down", len(self._streak), self.fall, latest)
        return Pending("up", len(self._streak), self.rise, latest)

    def observe(self, verdict: Verdict) -> bool:
        """
        Take one check's verdict; return True if the current verdict changed (its fitness,
        or the reason at the same fitness).  The first verdict is taken as it is.
        """
        current = self.current
        if current is None:
            self.current = verdict
            return True
        rank, now = RANK[verdict.fitness], RANK[current.fitness]
        if rank == now:
            self._streak = []
            if verdict.reason != current.reason:
                self.current = verdict
                return True
            return False
        worse = rank < now
        if self._streak and (RANK[self._streak[-1].fitness] < now) != worse:
            self._streak = []
        self._streak.append(verdict)
        needed = self.fall if worse else self.rise
        if len(self._streak) < needed:
            return False
        window = self._streak[-needed:]
        ranks = [RANK[v.fitness] for v in window]
        target = max(ranks) if worse else min(ranks)
        # The latest verdict of the chosen level carries the reason.
        self.current = next(v for v in reversed(window) if RANK[v.fitness] == target)
        # The latest checks that are still past the new level count towards the next change.
        run: list[Verdict] = []
        for v in reversed(self._streak):
            if (RANK[v.fitness] < target) if worse else (RANK[v.fitness] > target):
                run.insert(0, v)
            else:
                break
        self._streak = run
        return True
