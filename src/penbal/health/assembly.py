# -*- test-case-name: tests.health.test_assembly -*-
"""
Building the health checker from C{twist penbal}'s options: the check (TCP or Galera), how its
results are judged, the scheduler, discovery, and the Galera check's worker threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from penbal.health.credentials import Credentials
from penbal.health.discovery import Discovery
from penbal.health.fitness import DonorPolicy, galera_verdict, reachability_verdict
from penbal.health.galera import GaleraCheck
from penbal.health.partition import ClusterViews
from penbal.health.result import CheckResult, Verdict
from penbal.health.scheduler import Assess, HealthScheduler, RoundObserver
from penbal.health.tcpcheck import TCPCheck
from penbal.interfaces import IHealthCheck
from penbal.pool import BackendPool

log = Logger(namespace="penbal.health")

CHECKS = ("tcp", "galera")


def tcp_assess(result: CheckResult, everything: Sequence[CheckResult]) -> Verdict:
    """The TCP check's judgement: reachable or not."""
    return reachability_verdict(result)


def galera_assess(donor: DonorPolicy, views: ClusterViews) -> Assess:
    """The Galera judgement: the node's own state, then the cluster view of the round."""

    def assess(result: CheckResult, everything: Sequence[CheckResult]) -> Verdict:
        return views.judge(galera_verdict(result, donor), result, everything)

    return assess


class ThreadPoolService(Service):
    """Starts a thread pool with the service and stops it (joining its threads) after, once
    its last work (C{last}, say closing kept connections) has run in it."""

    def __init__(self, threadpool: ThreadPool, last: Sequence[Callable[[], object]] = ()) -> None:
        self.threadpool = threadpool
        self.last = list(last)

    def startService(self) -> None:
        super().startService()
        self.threadpool.start()

    def stopService(self) -> None:
        super().stopService()
        for work in self.last:
            self.threadpool.callInThread(work)
        self.threadpool.stop()


def build_health_service(
    reactor: Any, pool: BackendPool, options: Mapping[str, Any], default_port: int
) -> IService:
    """
    The checker for C{options["check"]}: a service that checks every backend of C{pool}.

    C{options} holds C{check}, C{check-interval}, C{check-timeout}, C{rise}, C{fall},
    C{donor}, C{on-unfit}, C{discover} and, for the Galera check, C{check-credentials-found}
    (the L{Credentials}).
    """
    top = MultiService()
    timeout = float(options["check-timeout"])
    interval = float(options["check-interval"])
    if timeout > interval:
        log.warn(
            "--check-timeout {timeout}s exceeds --check-interval {interval}s: a round waits"
            " for its slowest check, so a failed node may be out only after"
            " fall x {timeout}s + {timeout}s",
            timeout=timeout,
            interval=interval,
        )
    check: IHealthCheck
    assess: Assess
    if options["check"] == "galera":
        credentials: Credentials = options["check-credentials-found"]
        if credentials.warning:
            log.warn("--check-credentials: {problem}", problem=credentials.warning)
        threadpool = ThreadPool(minthreads=0, maxthreads=max(8, 2 * len(pool)), name="penbal-check")
        galera = GaleraCheck(reactor, threadpool, reactor, credentials, timeout)
        ThreadPoolService(threadpool, [galera.connections.close_all]).setServiceParent(top)
        check = galera
        assess = galera_assess(DonorPolicy(options["donor"]), ClusterViews(reactor, interval))
    else:
        check = TCPCheck(reactor, reactor, timeout)
        assess = tcp_assess
    observers: list[RoundObserver] = []
    if options["discover"]:
        observers.append(Discovery(pool, default_port))
    scheduler = HealthScheduler(
        reactor,
        pool,
        check,
        assess,
        interval=interval,
        timeout=timeout,
        rise=int(options["rise"]),
        fall=int(options["fall"]),
        close_unfit=options["on-unfit"] == "close",
        observers=observers,
    )
    scheduler.setServiceParent(top)
    return top
