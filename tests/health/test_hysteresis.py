"""
Tests for L{penbal.health.hysteresis}: rise and fall.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import Fitness
from penbal.health.hysteresis import Hysteresis
from penbal.health.result import FIT, Verdict

UNFIT = Verdict(Fitness.UNFIT, "refused")
DONOR = Verdict(Fitness.LAST_RESORT, "desynced")


def fed(tracker: Hysteresis, *verdicts: Verdict) -> list[bool]:
    return [tracker.observe(v) for v in verdicts]


class HysteresisTests(SynchronousTestCase):
    """Changes need streaks."""

    def test_first_verdict_taken(self) -> None:
        """The first check decides at once."""
        tracker = Hysteresis(rise=2, fall=2)
        self.assertEqual(fed(tracker, UNFIT), [True])
        self.assertEqual(tracker.current, UNFIT)

    def test_fall(self) -> None:
        """A fit backend goes unfit on the FALL-th bad check in a row, not before."""
        tracker = Hysteresis(rise=2, fall=3)
        self.assertEqual(fed(tracker, FIT, UNFIT, UNFIT, UNFIT), [True, False, False, True])
        self.assertEqual(tracker.current, UNFIT)

    def test_interrupted_fall(self) -> None:
        """A good check in between starts the count again."""
        tracker = Hysteresis(rise=2, fall=2)
        self.assertEqual(fed(tracker, FIT, UNFIT, FIT, UNFIT), [True, False, False, False])
        self.assertEqual(tracker.current, FIT)

    def test_rise(self) -> None:
        """An unfit backend comes back on the RISE-th good check in a row."""
        tracker = Hysteresis(rise=3, fall=2)
        self.assertEqual(fed(tracker, UNFIT, FIT, FIT, UNFIT, FIT, FIT, FIT),
                         [True, False, False, False, False, False, True])
        self.assertEqual(tracker.current, FIT)

    def test_pending(self) -> None:
        """The change under way is reported with its count."""
        tracker = Hysteresis(rise=3, fall=2)
        fed(tracker, UNFIT, FIT)
        pending = tracker.pending
        assert pending is not None
        self.assertEqual((pending.direction, pending.count, pending.needed), ("up", 1, 3))

    def test_donor_takes_fall_checks(self) -> None:
        """Fit to last resort (a desync) also takes FALL checks."""
        tracker = Hysteresis(rise=2, fall=2)
        self.assertEqual(fed(tracker, FIT, DONOR, DONOR), [True, False, True])
        self.assertEqual(tracker.current, DONOR)

    def test_mixed_bad_streak_takes_the_best_level(self) -> None:
        """FALL checks of which one is a donor and one unfit: last resort, then unfit."""
        tracker = Hysteresis(rise=2, fall=2)
        self.assertEqual(fed(tracker, FIT, DONOR, UNFIT), [True, False, True])
        self.assertEqual(tracker.current, DONOR)
        self.assertEqual(fed(tracker, UNFIT), [True])
        self.assertEqual(tracker.current, UNFIT)

    def test_reason_change_at_same_level(self) -> None:
        """A new reason at the same fitness is taken at once."""
        tracker = Hysteresis(rise=2, fall=2)
        fed(tracker, UNFIT)
        other = Verdict(Fitness.UNFIT, "non-Primary")
        self.assertEqual(fed(tracker, other), [True])
        self.assertEqual(tracker.current, other)

    def test_same_verdict_no_change(self) -> None:
        """The same verdict again is no change."""
        tracker = Hysteresis(rise=2, fall=2)
        self.assertEqual(fed(tracker, FIT, FIT, FIT), [True, False, False])
        self.assertIsNone(tracker.pending)

    def test_rise_one_fall_one(self) -> None:
        """With rise=fall=1 every change is immediate."""
        tracker = Hysteresis(rise=1, fall=1)
        self.assertEqual(fed(tracker, FIT, UNFIT, FIT), [True, True, True])

    def test_invalid(self) -> None:
        """Rise or fall below 1 is refused."""
        self.assertRaises(ValueError, Hysteresis, 0, 2)
