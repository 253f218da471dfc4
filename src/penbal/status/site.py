# -*- test-case-name: tests.status.test_views -*-
"""
The read-only HTTP status site (C{--http}): C{/} the page, C{/status.json}, C{/metrics}, and
C{/health} for keepalived and other probes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Site

from penbal.status.jsonview import JsonResource
from penbal.status.metrics import MetricsResource, make_registry
from penbal.status.page import PageResource
from penbal.status.readiness import HealthResource, readiness
from penbal.status.snapshot import BackendStatus, Snapshot


class StatusSite(Site):
    """A site that keeps no access log (a scraper every few seconds would flood the log)."""

    def log(self, request: http.Request) -> None:
        pass


def status_site(
    source: Callable[[], Snapshot],
    stopping: Callable[[], bool] = lambda: False,
    backends: Callable[[], Sequence[BackendStatus]] | None = None,
) -> Site:
    """A twisted.web site showing the snapshot C{source} returns at each request.

    C{/health} asks C{stopping} whether a graceful stop began, and C{backends} for the table
    (by default the snapshot's: pass a cheaper source, since probes ask several times a
    second and a snapshot lists every live connection).
    """
    table = backends if backends is not None else (lambda: source().backends)
    root = Resource()
    root.putChild(b"health", HealthResource(lambda: readiness(table(), stopping())))
    root.putChild(b"", PageResource(source))
    root.putChild(b"status.json", JsonResource(source))
    root.putChild(b"metrics", MetricsResource(make_registry(source)))
    site = StatusSite(root)
    site.displayTracebacks = False
    site.noisy = False
    return site
