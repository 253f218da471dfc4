# -*- test-case-name: tests.status.test_queue -*-
"""
Tests of the wait queue (C{--queue-timeout}) in every status view: JSON, metrics, the page and
the control port's C{status} text.
"""

from __future__ import annotations

import json

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import Fitness, Health
from penbal.status.metrics import make_registry
from penbal.status.page import render_page
from penbal.status.snapshot import build_snapshot, render_json
from penbal.status.text import summary_lines
from tests.control.fixtures import make_runtime


class QueueViewTests(SynchronousTestCase):
    """Two clients wait while every backend is unfit; one more is refused (queue full)."""

    def setUp(self) -> None:
        self.runtime, self.harness = make_runtime()
        self.runtime.queue = self.harness.factory.enable_queue(2.0, 2)
        for backend in self.runtime.balancer.pool:
            backend.health = Health(Fitness.UNFIT, "non-Primary")
        for port in (5001, 5002, 5003):
            front, transport = self.harness.client("127.0.0.9", port)
            if transport.disconnecting:  # the third: refused, its close completes
                front.connectionLost(Failure(ConnectionDone()))

    def test_json(self) -> None:
        """The JSON document has a queue object with the waiting clients and the figures;
        held clients also count as live connections."""
        document = json.loads(render_json(build_snapshot(self.runtime)))
        self.assertEqual(document["queue"], {"waiting": 2, "timeout": 2.0, "max": 2, "held": 2,
                                             "served": 0, "expired": 0, "refused": 1})
        self.assertEqual(document["connections_active"], 2)

    def test_figures_after_the_deadline(self) -> None:
        """At the deadline the waiting clients are expired and the queue is empty."""
        self.harness.reactor.advance(2.1)
        queue = build_snapshot(self.runtime).queue
        assert queue is not None
        self.assertEqual((queue.waiting, queue.expired), (0, 2))

    def test_metrics(self) -> None:
        """/metrics has the waiting gauge and the counters."""
        registry = make_registry(lambda: build_snapshot(self.runtime))
        text = generate_latest(registry).decode()
        samples = {s.name: s.value for f in text_string_to_metric_families(text)
                   for s in f.samples}
        self.assertEqual(samples["penbal_queue_waiting_clients"], 2)
        self.assertEqual(samples["penbal_queue_held_clients_total"], 2)
        self.assertEqual(samples["penbal_queue_refused_clients_total"], 1)
        self.assertEqual(samples["penbal_queue_timeout_seconds"], 2.0)

    def test_page_and_text(self) -> None:
        """The page has a wait queue table; the control port's status says it in a line."""
        snapshot = build_snapshot(self.runtime)
        html = render_page(snapshot).decode()
        self.assertIn("Wait queue (2)", html)
        self.assertIn('id="queue"', html)
        lines = summary_lines(snapshot)
        self.assertIn("queue: 2 waiting (max 2, timeout 2s), 2 held, 0 served, 0 expired, "
                      "1 refused", lines)

    def test_absent_without_queue(self) -> None:
        """Without --queue-timeout no view mentions a queue."""
        runtime, _ = make_runtime()
        snapshot = build_snapshot(runtime)
        self.assertIsNone(snapshot.queue)
        self.assertNotIn("queue", " ".join(summary_lines(snapshot)))
