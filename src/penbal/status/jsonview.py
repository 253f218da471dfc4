# -*- test-case-name: tests.status.test_views,tests.status.test_snapshot -*-
"""
The status as JSON: C{GET /status.json} and the control port's C{status json}, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.web.resource import Resource
from twisted.web.server import Request

from penbal.status.snapshot import Snapshot, render_json


class JsonResource(Resource):
    """C{/status.json}: read-only."""

    isLeaf = True

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        super().__init__()
        self._source = source

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return render_json(self._source()).encode("utf-8") + b"\n"
