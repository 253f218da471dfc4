# -*- test-case-name: tests.health.test_scheduler -*-
"""
A scripted health check and a pool of loopback backends, driven by a L{Clock}.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.health.result import CheckResult
from penbal.interfaces import IHealthCheck
from penbal.pool import BackendPool

# What a backend answers at a time: a result, or None for "never answers" (frozen).
Script = Callable[[float], CheckResult | None]


def pool_of(clock: Clock, count: int = 3, base_port: int = 3361) -> BackendPool:
    """A pool of C{count} loopback backends."""
    return BackendPool(clock, [BackendSpec("127.0.0.1", base_port + i) for i in range(count)])


@implementer(IHealthCheck)
class ScriptedCheck:
    """Answers each check from a per-backend script, after C{latency} seconds."""

    name = "scripted"

    def __init__(self, clock: Clock, latency: float = 0.05) -> None:
        self.clock = clock
        self.latency = latency
        self.scripts: dict[str, Script] = {}
        self.calls: list[tuple[str, float]] = []
        self.running: dict[str, int] = {}
        self.max_running = 0

    def set(self, backend: Backend, script: Script) -> None:
        """Script C{backend}'s answers."""
        self.scripts[backend.address] = script

    def check(self, backend: Backend) -> Deferred[CheckResult]:
        address = backend.address
        now = self.clock.seconds()
        self.calls.append((address, now))
        self.running[address] = self.running.get(address, 0) + 1
        self.max_running = max(self.max_running, self.running[address])

        def done(result: object) -> object:
            self.running[address] -= 1
            return result

        def cancel(d: Deferred[CheckResult]) -> None:
            if call.active():
                call.cancel()

        d: Deferred[CheckResult] = Deferred(cancel)
        d.addBoth(done)
        answer = self.scripts.get(address, lambda t: CheckResult(True, self.latency))(now)

        def fire() -> None:
            if answer is not None:
                d.callback(answer)

        call = self.clock.callLater(self.latency, fire)
        return d

    def times(self, backend: Backend) -> list[float]:
        """When C{backend} was checked."""
        return [t for a, t in self.calls if a == backend.address]


def after(t_fault: float, before: CheckResult | None, then: CheckResult | None) -> Script:
    """A script that answers C{before} until C{t_fault}, C{then} from it on."""
    return lambda t: before if t < t_fault else then


class FakeFront:
    """A relayed connection as the scheduler sees it in C{Backend.live}."""

    def __init__(self) -> None:
        self.ended_by = ""
        self.closed = False

    def close(self) -> None:
        self.closed = True
