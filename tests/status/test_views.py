# -*- test-case-name: tests.status.test_views -*-
"""
Tests of the views of the snapshot: HTML page, JSON, Prometheus metrics, text, and the site.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from penbal.backend import AdminState
from penbal.status.metrics import make_registry
from penbal.status.page import render_page
from penbal.status.site import status_site
from penbal.status.snapshot import Snapshot, build_snapshot
from penbal.status.text import server_line, summary_lines
from tests.control.fixtures import connect, make_runtime


def content_type(request: DummyRequest) -> bytes:
    return (request.responseHeaders.getRawHeaders(b"content-type") or [b""])[0]


class ViewCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.runtime, self.harness = make_runtime()
        self.front: Any = connect(self.harness, "127.10.0.7", 4444)
        self.front.dataReceived(b"x" * 10)
        pool = self.runtime.balancer.pool
        pool[1 - self.front.backend.index].admin = AdminState.DRAIN
        pool[0].health.details = {"wsrep_local_state": 4, "wsrep_ready": True,
                                  "wsrep_local_state_comment": "Synced <ok>"}

    def snapshot(self) -> Snapshot:
        return build_snapshot(self.runtime)


class PageTests(ViewCase):
    """The human page."""

    def test_content(self) -> None:
        """Backends with state and reason, health values, connections and settings."""
        html = render_page(self.snapshot()).decode()
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        for text in ("127.0.0.1:4000", "draining: no new connections", "wsrep_local_state",
                     "127.10.0.7:4444", "conn_max", "Live connections (1)"):
            self.assertIn(text, html)

    def test_escaping(self) -> None:
        """Values are escaped."""
        html = render_page(self.snapshot()).decode()
        self.assertIn("Synced &lt;ok&gt;", html)
        self.assertNotIn("Synced <ok>", html)


class MetricsTests(ViewCase):
    """/metrics, read back with prometheus_client's own parser."""

    def families(self) -> dict[str, Any]:
        from prometheus_client.exposition import generate_latest

        text = generate_latest(make_registry(self.snapshot)).decode()
        return {family.name: family for family in text_string_to_metric_families(text)}

    def test_parsed(self) -> None:
        """Every figure is there once, with backend labels."""
        families = self.families()
        index = str(self.front.backend.index)
        active = {s.labels["server"]: s.value
                  for s in families["penbal_backend_active_connections"].samples}
        self.assertEqual(active[index], 1)
        sent = {s.labels["server"]: s.value for s in families["penbal_backend_sent_bytes"].samples
                if s.name.endswith("_total")}
        self.assertEqual(sent[index], 10)
        self.assertEqual(families["penbal_connections_active"].samples[0].value, 1)
        states = {(s.labels["server"], s.labels["state"]): s.value
                  for s in families["penbal_backend_state"].samples}
        self.assertEqual(states[(str(1 - int(index)), "draining")], 1)
        self.assertEqual(sum(v for (server, _), v in states.items() if server == index), 1)
        health = {s.labels["name"]: s.value
                  for s in families["penbal_backend_health_value"].samples}
        self.assertEqual(health, {"wsrep_local_state": 4, "wsrep_ready": 1})
        self.assertEqual(families["penbal_info"].samples[0].labels["policy"], "sticky")

    def test_fresh_each_scrape(self) -> None:
        """The collector reads the balancer at each scrape."""
        self.runtime.balancer.settings.max_connections = 77
        self.assertEqual(self.families()["penbal_max_connections"].samples[0].value, 77)


class TextTests(ViewCase):
    """Pen's servers line and the summary."""

    def test_server_line(self) -> None:
        """Pen's field order, penbal's state at the end."""
        line = server_line(self.snapshot().backends[self.front.backend.index])
        self.assertRegex(line, r"^\d addr 127\.0\.0\.1 port 400\d conn 1 max 0 hard 0 weight 0 "
                               r"prio 0 sx 10 rx 0 state up$")

    def test_summary(self) -> None:
        """One line for penbal, one per backend."""
        lines = summary_lines(self.snapshot())
        self.assertEqual(len(lines), 3)
        self.assertIn("1 connections (1 accepted)", lines[0])
        self.assertIn("health wsrep_local_state=4", "\n".join(lines))


class SiteTests(ViewCase):
    """The HTTP routes."""

    def get(self, path: bytes, accept: bytes | None = None) -> tuple[DummyRequest, bytes]:
        site = status_site(self.snapshot)
        request = DummyRequest(path.strip(b"/").split(b"/") if path != b"/" else [b""])
        if accept is not None:
            request.requestHeaders.setRawHeaders(b"accept", [accept])
        resource = site.getResourceFor(request)
        body = resource.render(request)
        return request, body

    def test_routes(self) -> None:
        """/, /status.json and /metrics with their content types; others are 404."""
        request, body = self.get(b"/")
        self.assertIn(b"text/html", content_type(request))
        self.assertIn(b"<table", body)
        request, body = self.get(b"/status.json")
        self.assertEqual(content_type(request), b"application/json")
        self.assertEqual(json.loads(body)["connections_active"], 1)
        request, body = self.get(b"/metrics")
        self.assertIn(b"text/plain", content_type(request))
        self.assertIn(b"penbal_backend_active_connections", body)
        request, body = self.get(b"/nothing")
        self.assertEqual(request.responseCode, 404)

    def test_openmetrics(self) -> None:
        """A scraper asking for OpenMetrics gets it."""
        request, body = self.get(b"/metrics", b"application/openmetrics-text; version=1.0.0")
        self.assertIn(b"openmetrics", content_type(request))
        self.assertTrue(body.endswith(b"# EOF\n"))

    def test_read_only(self) -> None:
        """Only GET and HEAD are allowed."""
        from twisted.web.error import UnsupportedMethod

        site = status_site(self.snapshot)
        request = DummyRequest([b"status.json"])
        request.method = b"POST"
        with self.assertRaises(UnsupportedMethod):
            site.getResourceFor(request).render(request)
