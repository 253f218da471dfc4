# -*- test-case-name: tests.status.test_readiness -*-
"""
Tests for L{penbal.status.readiness}: C{GET /health} says 200 while penbal serves with a usable
backend, 503 (with the reason, one line) otherwise.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from penbal.backend import AdminState, Fitness, Health
from penbal.runtime import Runtime
from penbal.status.site import status_site
from penbal.status.snapshot import Snapshot, backend_statuses, build_snapshot
from tests.control.fixtures import make_runtime


def get_health(runtime: Runtime, stopping: bool = False) -> tuple[int, bytes]:
    """The status code and body of C{GET /health} on the status site of C{runtime}."""
    site = status_site(lambda: build_snapshot(runtime), lambda: stopping)
    request = DummyRequest([b"health"])
    body = site.getResourceFor(request).render(request)
    assert isinstance(body, bytes)
    return request.responseCode or 200, body


class HealthTests(SynchronousTestCase):
    """What /health answers."""

    def setUp(self) -> None:
        self.runtime, _ = make_runtime()
        self.pool = self.runtime.balancer.pool

    def test_serving(self) -> None:
        """Usable backends: 200, saying how many."""
        self.assertEqual(get_health(self.runtime), (200, b"serving: 2 of 2 backends usable\n"))

    def test_one_left(self) -> None:
        """One usable backend is enough."""
        self.pool[0].health = Health(Fitness.UNFIT, "non-Primary")
        self.assertEqual(get_health(self.runtime), (200, b"serving: 1 of 2 backends usable\n"))

    def test_last_resort_counts(self) -> None:
        """A last-resort backend (a Galera donor) still takes clients."""
        for backend in self.pool:
            backend.health = Health(Fitness.LAST_RESORT, "desynced")
        self.assertEqual(get_health(self.runtime)[0], 200)

    def test_none_usable(self) -> None:
        """Every backend unfit, drained or blacklisted: 503 naming each and why."""
        self.pool[0].health = Health(Fitness.UNFIT, "not in the Primary component")
        self.pool[1].admin = AdminState.DRAIN
        code, body = get_health(self.runtime)
        self.assertEqual(code, 503)
        self.assertEqual(body, b"no usable backend: 127.0.0.1:4000 unfit (not in the Primary"
                               b" component); 127.0.0.1:4001 draining (draining: no new"
                               b" connections)\n")

    def test_blacklisted(self) -> None:
        """Backends that refused connects are not usable while blacklisted."""
        now = self.runtime.now()
        for backend in self.pool:
            backend.blacklist(now, 30, "connection refused")
        self.assertEqual(get_health(self.runtime)[0], 503)

    def test_many_named_briefly(self) -> None:
        """Past three backends the reason counts the rest."""
        runtime, _ = make_runtime(tuple(f"127.0.0.1:{4000 + i}" for i in range(5)))
        for backend in runtime.balancer.pool:
            backend.admin = AdminState.DOWN
        code, body = get_health(runtime)
        self.assertEqual(code, 503)
        self.assertTrue(body.endswith(b"; and 2 more\n"), body)
        self.assertEqual(body.count(b"\n"), 1)

    def test_empty_table(self) -> None:
        """No backend at all: 503."""
        runtime, _ = make_runtime(())
        self.assertEqual(get_health(runtime), (503, b"no backend in the table\n"))

    def test_stopping(self) -> None:
        """Once a graceful stop began: 503, whatever the backends."""
        self.assertEqual(get_health(self.runtime, stopping=True), (503, b"stopping\n"))

    def test_one_line(self) -> None:
        """A reason with line breaks still gives one line."""
        self.pool[0].admin = AdminState.DOWN
        self.pool[1].health = Health(Fitness.UNFIT, "MySQL 2013:\nLost connection")
        body = get_health(self.runtime)[1]
        self.assertEqual(body.count(b"\n"), 1)
        self.assertIn(b"MySQL 2013: Lost connection", body)

    def test_plain_text_not_cached(self) -> None:
        """Plain text, never cached."""
        site = status_site(lambda: build_snapshot(self.runtime))
        request = DummyRequest([b"health"])
        site.getResourceFor(request).render(request)
        headers = request.responseHeaders
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"text/plain; charset=utf-8"])
        self.assertEqual(headers.getRawHeaders(b"cache-control"), [b"no-store"])

    def test_table_source(self) -> None:
        """Given a source of the table, /health reads it and builds no snapshot (a snapshot
        lists every live connection; probes ask several times a second)."""

        def no_snapshot() -> Snapshot:
            raise AssertionError("a snapshot was built")

        site = status_site(no_snapshot, lambda: False,
                           lambda: backend_statuses(self.runtime, self.runtime.now()))
        request = DummyRequest([b"health"])
        self.assertEqual(site.getResourceFor(request).render(request),
                         b"serving: 2 of 2 backends usable\n")
