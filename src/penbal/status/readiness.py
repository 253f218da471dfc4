# -*- test-case-name: tests.status.test_readiness -*-
"""
C{GET /health} on the C{--http} port: what keepalived, a cloud load balancer or a Kubernetes
probe asks before sending clients here.

C{200} with a one-line reason while penbal is serving and at least one backend of its table may
take a new connection; C{503} with the reason otherwise (stopping, no backend, every backend
unfit, drained, down or blacklisted).  The emergency server (C{-e}) does not count: an
instance left with it alone should give the virtual IP to a peer that has real backends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.web.resource import Resource
from twisted.web.server import Request

from penbal.status.snapshot import BackendStatus

# Backend states in which new connections may go there ("full" is load, not a fault: a peer
# would be as full).
USABLE_STATES = frozenset({"up", "last-resort", "full"})
# How many unusable backends the reason names before "and N more".
NAMED = 3


@dataclass(frozen=True)
class Readiness:
    """Whether penbal should get clients now, and why, in one line."""

    ready: bool
    reason: str


def _why_not(backend: BackendStatus) -> str:
    reason = backend.reason or backend.health_reason
    return f"{backend.address} {backend.state}" + (f" ({reason})" if reason else "")


def readiness(backends: Sequence[BackendStatus], stopping: bool) -> Readiness:
    """The verdict of C{/health} for the table's C{backends}; C{stopping} once a graceful stop
    began."""
    if stopping:
        return Readiness(False, "stopping")
    if not backends:
        return Readiness(False, "no backend in the table")
    usable = [b for b in backends if b.state in USABLE_STATES]
    if usable:
        return Readiness(True, f"serving: {len(usable)} of {len(backends)} backends usable")
    shown = "; ".join(_why_not(b) for b in backends[:NAMED])
    more = f"; and {len(backends) - NAMED} more" if len(backends) > NAMED else ""
    return Readiness(False, f"no usable backend: {shown}{more}")


class HealthResource(Resource):
    """C{/health}: the status code says it all; the body is the reason, one line."""

    isLeaf = True

    def __init__(self, verdict: Callable[[], Readiness]) -> None:
        super().__init__()
        self._verdict = verdict

    def render_GET(self, request: Request) -> bytes:
        verdict = self._verdict()
        request.setResponseCode(200 if verdict.ready else 503)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        line = " ".join(verdict.reason.split())  # one line, whatever a reason held
        return line.encode("utf-8") + b"\n"
