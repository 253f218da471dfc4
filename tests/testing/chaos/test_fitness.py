"""
Tests for L{penbal.testing.chaos.fitness}: the balancer's view from its log, the harness's
view from direct reads, and when both agree a node was fit.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.chaos.fitness import (
    FitTimeline,
    balancer_fit,
    health_events,
    intersect,
    observed_fit,
)
from penbal.testing.galera_poller import Observation

A = "127.0.0.1:3311"
UUID = "f8fc94ba-f209-11f1-976f-3acdfa8f7883"


def healthy(conf: int = 3, **changes: str) -> dict[str, str]:
    values = {
        "wsrep_local_state": "4", "wsrep_ready": "ON", "wsrep_connected": "ON",
        "wsrep_cluster_status": "Primary", "wsrep_reject_queries": "NONE",
        "wsrep_cluster_conf_id": str(conf), "wsrep_cluster_state_uuid": UUID,
    }
    values.update(changes)
    return values


def read(node: int, at: float, values: dict[str, str] | None = None,
         error: str = "") -> Observation:
    return Observation(node, at, at + 0.25, values or {}, error)


class BalancerViewTests(SynchronousTestCase):
    def test_health_events(self) -> None:
        """Health events are read from twist's JSON log, whose lines start with a record
        separator; other events and other lines are ignored."""
        event = {"penbal_event": "health", "backend": A, "fitness": "unfit", "log_time": 5.0}
        log = "\n".join(["\x1e" + json.dumps(event), "\x1e" + json.dumps({"penbal_event": "x"}),
                         "not json"])
        self.assertEqual(health_events(log), [event])

    def test_intervals(self) -> None:
        """Fit from the start, out at an unfit event, back at a fit or last-resort one; events
        of other backends change nothing."""
        events = [
            {"backend": A, "fitness": "unfit", "log_time": 10.0},
            {"backend": "other", "fitness": "fit", "log_time": 11.0},
            {"backend": A, "fitness": "last-resort", "log_time": 12.0},
            {"backend": A, "fitness": "fit", "log_time": 13.0},
            {"backend": A, "fitness": "unfit", "log_time": 15.0},
        ]
        self.assertEqual(balancer_fit(events, A, 0.0, 20.0), [(0.0, 10.0), (12.0, 15.0)])


class ObservedViewTests(SynchronousTestCase):
    def test_consecutive_fit_reads(self) -> None:
        """A node is fit from the start of one fit read to the end of the next fit one; a
        failed read ends it."""
        reads = [read(1, 0.0, healthy()), read(1, 0.5, healthy()), read(1, 1.0, healthy()),
                 read(1, 1.5, error="refused"), read(1, 2.0, healthy()), read(1, 2.5, healthy())]
        self.assertEqual(observed_fit(reads)[1], [(0.0, 1.25), (2.0, 2.75)])

    def test_stale_configuration(self) -> None:
        """A node reporting Synced/Primary with a lower configuration id than another Primary
        node of the same cluster (a resumed frozen node) is not fit."""
        reads = [read(2, 0.0, healthy(12)), read(1, 0.5, healthy(11)), read(2, 1.0, healthy(12)),
                 read(1, 1.5, healthy(11))]
        seen = observed_fit(reads)
        self.assertEqual(seen.get(1, []), [])
        self.assertEqual(seen[2], [(0.0, 1.25)])

    def test_unfit_states(self) -> None:
        """Rejecting queries and non-Primary are unfit; a desynced node (state 2) is usable."""
        for values, fit in ((healthy(wsrep_reject_queries="ALL"), False),
                            (healthy(wsrep_cluster_status="non-Primary"), False),
                            (healthy(wsrep_local_state="2"), True)):
            seen = observed_fit([read(1, 0.0, values), read(1, 0.5, values)])
            self.assertEqual(bool(seen.get(1)), fit, values)


class TimelineTests(SynchronousTestCase):
    def test_intersect(self) -> None:
        self.assertEqual(intersect([(0, 5), (8, 10)], [(1, 2), (4, 9)]),
                         [(1, 2), (4, 5), (8, 9)])

    def test_fit_within(self) -> None:
        """Fit at the start of the wait, or within the queue timeout after it; the margin
        keeps a failure at the very edge of a fit stretch from counting."""
        timeline = FitTimeline({1: [(10.0, 20.0)]}, margin=0.05)
        self.assertTrue(timeline.fit_within(15.0, 0.0))
        self.assertFalse(timeline.fit_within(9.0, 0.0))
        self.assertTrue(timeline.fit_within(9.0, 2.0))
        self.assertFalse(timeline.fit_within(7.0, 2.0))
        self.assertFalse(timeline.fit_within(19.97, 0.0))

    def test_build_needs_both_views(self) -> None:
        """A node counts only while both the balancer and the direct reads found it fit."""
        events = [{"backend": A, "fitness": "unfit", "log_time": 0.5}]
        reads = [read(1, 0.0, healthy()), read(1, 1.0, healthy())]
        timeline = FitTimeline.build(events, {1: A}, reads, 0.0, 2.0)
        self.assertEqual(timeline.both, {1: [(0.0, 0.5)]})
