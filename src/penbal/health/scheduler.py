# -*- test-case-name: tests.health.test_scheduler -*-
"""
Runs the health checks: every C{interval} seconds one round checks every backend at once, each
check bounded by C{timeout}; when the round is complete each backend's verdict (which may look
at the whole round, for the cluster view) goes through its rise/fall hysteresis, and changes
are applied to C{Backend.health} and logged.

A round starts C{interval} seconds after the previous one started, or as soon as it ended if it
took longer, so a check never overlaps the previous check of the same backend, and a node that
fails at any moment is out after at most C{fall * max(interval, timeout) + timeout} seconds
(rounds wait for their slowest check, so a timeout above the interval stretches them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, maybeDeferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from penbal.backend import Backend, Fitness, Health
from penbal.health.hysteresis import Hysteresis
from penbal.health.result import CheckResult, Verdict
from penbal.interfaces import IHealthCheck
from penbal.pool import BackendPool

log = Logger(namespace="penbal.health")

# Judges one backend's result, given every result of the round (for the cluster view).
Assess = Callable[[CheckResult, Sequence[CheckResult]], Verdict]
# Told about each completed round: each backend with its result.
RoundObserver = Callable[[Mapping[Backend, CheckResult]], None]

# The status values worth keeping with a backend's health and logging on a change.
WSREP_KEYS = (
    "wsrep_local_state",
    "wsrep_local_state_comment",
    "wsrep_ready",
    "wsrep_connected",
    "wsrep_cluster_status",
    "wsrep_cluster_size",
    "wsrep_cluster_conf_id",
    "wsrep_cluster_state_uuid",
    "wsrep_desync",
    "wsrep_reject_queries",
    "wsrep_node_name",
    "wsrep_local_index",
    "wsrep_local_recv_queue",
)


def close_connections(backend: Backend, why: str) -> int:
    """Close every live client connection relayed to C{backend}; return how many."""
    fronts = list(backend.live)
    for front in fronts:
        if getattr(front, "ended_by", None) == "":
            front.ended_by = why
        front.close()
    return len(fronts)


class HealthScheduler(Service):
    """Periodic rounds of checks over a backend pool, applied with hysteresis."""

    def __init__(
        self,
        clock: IReactorTime,
        pool: BackendPool,
        check: IHealthCheck,
        assess: Assess,
        *,
        interval: float = 1.0,
        timeout: float = 1.0,
        rise: int = 2,
        fall: int = 2,
        close_unfit: bool = False,
        observers: Sequence[RoundObserver] = (),
    ) -> None:
        self._clock = clock
        self._pool = pool
        self._check = check
        self._assess = assess
        self.interval = interval
        self.timeout = timeout
        self.rise = rise
        self.fall = fall
        self.close_unfit = close_unfit
        self.observers = list(observers)
        self.rounds = 0
        self._trackers: dict[Backend, Hysteresis] = {}
        self._round: Deferred[Any] | None = None
        self._next: IDelayedCall | None = None

    def startService(self) -> None:
        super().startService()
        self._start_round()

    def stopService(self) -> None:
        super().stopService()
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None
        if self._round is not None:
            self._round.cancel()
            self._round = None

    def _start_round(self) -> None:
        self._next = None
        started = self._clock.seconds()
        backends = list(self._pool)
        checks = [self._check_one(backend) for backend in backends]
        round_: Deferred[Any] = DeferredList(checks, consumeErrors=True)
        self._round = round_
        round_.addCallback(self._judge, backends, started)
        round_.addErrback(self._round_failed)
        round_.addCallback(self._schedule, started)

    def _check_one(self, backend: Backend) -> Deferred[CheckResult]:
        started = self._clock.seconds()
        d: Deferred[CheckResult] = maybeDeferred(self._check.check, backend)
        d.addTimeout(self.timeout, self._clock)

        def failed(failure: Failure) -> CheckResult:
            elapsed = self._clock.seconds() - started
            if failure.check(DeferredTimeout, CancelledError):
                return CheckResult(False, elapsed, f"no answer within {self.timeout:g}s")
            return CheckResult(False, elapsed, f"check failed: {failure.getErrorMessage()}")

        d.addErrback(failed)
        return d

    def _round_failed(self, failure: Failure) -> None:
        if not failure.check(CancelledError):
            log.failure("health check round failed", failure)

    def _schedule(self, ignored: object, started: float) -> None:
        self._round = None
        if not self.running:
            return
        delay = max(0.0, started + self.interval - self._clock.seconds())
        self._next = self._clock.callLater(delay, self._start_round)

    def _judge(
        self, outcomes: list[tuple[bool, CheckResult]], backends: list[Backend], started: float
    ) -> None:
        if not self.running:
            return
        self.rounds += 1
        present = set(self._pool)
        results = {
            backend: outcome
            for backend, (ok, outcome) in zip(backends, outcomes, strict=True)
            if ok and backend in present
        }
        for gone in set(self._trackers) - present:
            del self._trackers[gone]
        everything = list(results.values())
        for backend, result in results.items():
            verdict = self._assess(result, everything)
            self._lift_blacklist(backend, result, verdict, started)
            self._apply(backend, result, verdict)
        for observer in self.observers:
            observer(results)

    def _lift_blacklist(
        self, backend: Backend, result: CheckResult, verdict: Verdict, started: float
    ) -> None:
        """A check that began after a failed connect blacklisted C{backend}, and passed: the
        backend is back, whether or not it was ever judged unfit (an outage shorter than
        fall x interval never is, and would otherwise stay out for the whole C{-b})."""
        if (
            result.reachable
            and verdict.fitness is not Fitness.UNFIT
            and backend.is_blacklisted(self._clock.seconds())
            and started >= backend.blacklisted_at
        ):
            log.info(
                "backend {backend} passed a check after it was blacklisted ({why}):"
                " blacklisting lifted",
                penbal_event="blacklist-lifted",
                backend=backend.address,
                why=backend.blacklist_reason,
            )
            backend.clear_blacklist()

    def _apply(self, backend: Backend, result: CheckResult, verdict: Verdict) -> None:
        tracker = self._trackers.get(backend)
        first = tracker is None
        if tracker is None:
            tracker = self._trackers[backend] = Hysteresis(self.rise, self.fall)
        changed = tracker.observe(verdict)
        now = self._clock.seconds()
        details = self._details(result, verdict, tracker, now)
        current = tracker.current
        assert current is not None
        health = backend.health
        same = (current.fitness, current.reason) == (health.fitness, health.reason)
        if not first and (not changed or same):
            health.details = details
            return
        since = health.since if current.fitness is health.fitness and not first else now
        backend.health = Health(current.fitness, current.reason, since, details)
        self._log_change(backend, health, backend.health, result)
        if current.fitness is health.fitness:
            return
        if health.fitness is Fitness.UNFIT:
            # Back in service: a connect failure from before must not keep it out.
            backend.clear_blacklist()
        if current.fitness is Fitness.UNFIT and self.close_unfit:
            closed = close_connections(backend, f"backend unfit: {current.reason}")
            if closed:
                log.info(
                    "closed {count} connection(s) to unfit backend {backend}",
                    count=closed,
                    backend=backend.address,
                )

    def _details(
        self, result: CheckResult, verdict: Verdict, tracker: Hysteresis, now: float
    ) -> dict[str, Any]:
        pending = tracker.pending
        details: dict[str, Any] = {
            "check": self._check.name,
            "checked_at": now,
            "reachable": result.reachable,
            "latency": round(result.latency, 6),
            "last_error": result.error,
            "last_verdict": verdict.fitness.value,
            "last_reason": verdict.reason,
            "pending": (
                f"{pending.direction} to {pending.latest.fitness.value}:"
                f" {pending.count} of {pending.needed} checks"
                if pending is not None
                else ""
            ),
        }
        # Flat, so that status pages and metrics show each value (numbers become gauges).
        details.update((key, result.values[key]) for key in WSREP_KEYS if key in result.values)
        return details

    def _log_change(
        self, backend: Backend, before: Health, after: Health, result: CheckResult
    ) -> None:
        log.info(
            "backend {backend} is {fitness}{why} (was {previous}; check {latency:.3f}s)",
            penbal_event="health",
            backend=backend.address,
            fitness=after.fitness.value,
            why=f": {after.reason}" if after.reason else "",
            reason=after.reason,
            previous=before.fitness.value,
            previous_reason=before.reason,
            latency=result.latency,
            error=result.error,
            wsrep={k: v for k, v in after.details.items() if k.startswith("wsrep_")},
        )
