# -*- test-case-name: tests.test_backend -*-
"""
Backends made busy for tests: a backend's active count is the size of its live set (see
L{penbal.backend.Counters}), so a test that needs N active connections puts N stand-ins there.
"""

from __future__ import annotations

from penbal.backend import Backend


class StandIn:
    """A connection that is only counted (closing it does nothing)."""

    ended_by = ""

    def close(self) -> None:
        pass


def occupy(backend: Backend, count: int) -> None:
    """Make exactly C{count} connections live on C{backend}."""
    backend.live.clear()
    backend.live.update(StandIn() for _ in range(count))
