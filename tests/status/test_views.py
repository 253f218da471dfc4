# -*- test-case-name: tests.status.test_views -*-
"""
Tests of the views of the snapshot: HTML page, JSON, Prometheus metrics, text, and the site.
"""

from __future__ import annotations

import json
import re
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
from tests.udp.fixtures import UDPHarness, udp_runtime


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


class UDPViewTests(SynchronousTestCase):
    """The views in UDP mode: sessions, datagram columns, the front side's figures."""

    def setUp(self) -> None:
        self.harness = UDPHarness(backends=2, capacity=2,
                                  admit=lambda client: client.host != "127.10.9.9")
        h = self.harness
        h.send(b"no", host="127.10.9.9")
        for port in (1, 2, 3):
            h.send(b"hello", host="127.10.0.5", port=port)   # one evicted
        h.opener.links[-1].reply(b"welcome!")
        self.runtime = udp_runtime(h)

    def snapshot(self) -> Snapshot:
        return build_snapshot(self.runtime)

    def test_metrics(self) -> None:
        """Per-backend datagrams and sessions, and every front-side figure, in /metrics."""
        from prometheus_client.exposition import generate_latest

        text = generate_latest(make_registry(self.snapshot)).decode()
        families = {family.name: family for family in text_string_to_metric_families(text)}

        def per_backend(name: str) -> dict[str, float]:
            return {s.labels["server"]: s.value for s in families[name].samples
                    if not s.name.endswith("_created")}

        self.assertEqual(per_backend("penbal_backend_sent_datagrams"), {"0": 3, "1": 0})
        self.assertEqual(per_backend("penbal_backend_received_datagrams"), {"0": 1, "1": 0})
        self.assertEqual(per_backend("penbal_backend_sent_bytes"), {"0": 15, "1": 0})
        self.assertEqual(per_backend("penbal_backend_received_bytes"), {"0": 8, "1": 0})
        self.assertEqual(per_backend("penbal_backend_connections"), {"0": 3, "1": 0})
        self.assertEqual(per_backend("penbal_backend_active_connections"), {"0": 2, "1": 0})
        self.assertEqual(families["penbal_connections_active"].samples[0].value, 2)

        def value(name: str) -> float:
            [sample] = [s for s in families[name].samples if not s.name.endswith("_created")]
            return float(sample.value)

        self.assertEqual(
            {name: value(name) for name in (
                "penbal_udp_sessions_active", "penbal_udp_max_sessions", "penbal_udp_sessions",
                "penbal_udp_received_datagrams", "penbal_udp_sent_datagrams",
                "penbal_udp_moved_sessions", "penbal_udp_resent_datagrams",
                "penbal_udp_evicted_sessions", "penbal_udp_expired_sessions",
                "penbal_udp_no_backend_datagrams", "penbal_udp_dropped_datagrams",
                "penbal_udp_denied_datagrams")},
            {"penbal_udp_sessions_active": 2, "penbal_udp_max_sessions": 2,
             "penbal_udp_sessions": 3, "penbal_udp_received_datagrams": 4,
             "penbal_udp_sent_datagrams": 1, "penbal_udp_moved_sessions": 0,
             "penbal_udp_resent_datagrams": 0, "penbal_udp_evicted_sessions": 1,
             "penbal_udp_expired_sessions": 0, "penbal_udp_no_backend_datagrams": 0,
             "penbal_udp_dropped_datagrams": 0, "penbal_udp_denied_datagrams": 1},
        )

    def test_no_udp_metrics_in_tcp_mode(self) -> None:
        """A TCP balancer has no penbal_udp_* families."""
        from prometheus_client.exposition import generate_latest

        runtime, _ = make_runtime()
        text = generate_latest(make_registry(lambda: build_snapshot(runtime))).decode()
        self.assertNotIn("penbal_udp_", text)
        self.assertIn("penbal_connections_active", text)

    def test_page(self) -> None:
        """The page has datagram columns, live sessions and the UDP figures."""
        html = render_page(self.snapshot()).decode()
        for text in ("<th>datagrams sent</th>", "<th>datagrams received</th>",
                     "<th>sessions</th>", "Live sessions (2)", "2 sessions now, 3 started",
                     "127.10.0.5:3", 'id="udp"', "sessions evicted (table full)",
                     "datagrams denied by the client ACL"):
            self.assertIn(text, html)
        self.assertNotIn("<th>conn</th>", html)
        row = html.split('<tr class="backend">')[1].split("</tr>")[0]
        numbers = re.findall(r'<td class="number">([^<]*)</td>', row)
        # index, sessions, total, failures, datagrams sent/received, bytes sent/received...
        self.assertEqual(numbers[:8], ["0", "2", "3", "0", "3", "1", "15", "8"])

    def test_tcp_page_unchanged(self) -> None:
        """The TCP page keeps its columns, without datagrams or a UDP table."""
        runtime, _ = make_runtime()
        html = render_page(build_snapshot(runtime)).decode()
        self.assertIn("<th>conn</th>", html)
        self.assertNotIn("datagrams", html)
        self.assertNotIn('id="udp"', html)

    def test_summary(self) -> None:
        """The summary names sessions, datagrams per backend and the front side's figures."""
        lines = summary_lines(self.snapshot())
        self.assertIn("2 sessions (3 started)", lines[0])
        self.assertIn("datagrams sent 3 received 1", lines[1])
        self.assertEqual(lines[-1], "udp: 2 sessions (max 2, 3 started, 0 moved, 1 evicted, "
                                    "0 expired), datagrams 4 in 1 out 0 resent, dropped 0 "
                                    "no_backend 0 denied 1")

    def test_json_route(self) -> None:
        """/status.json carries the sessions and the UDP figures."""
        site = status_site(self.snapshot)
        request = DummyRequest([b"status.json"])
        document = json.loads(site.getResourceFor(request).render(request))
        self.assertEqual(document["connections_active"], 2)
        self.assertEqual(document["udp"]["evicted"], 1)
        self.assertEqual(document["backends"][0]["counters"]["datagrams_to_backend"], 3)
