"""
Tests for L{penbal.health.assembly}: the checker built from options.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IServiceCollection
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from penbal.health.assembly import ThreadPoolService, build_health_service
from penbal.health.credentials import Credentials
from penbal.health.discovery import Discovery
from penbal.health.galera import GaleraCheck
from penbal.health.scheduler import HealthScheduler
from penbal.health.tcpcheck import TCPCheck
from tests.health.fakes import pool_of

BASE = {"check-interval": 0.5, "check-timeout": 0.25, "rise": 3, "fall": 4, "donor": "avoid",
        "on-unfit": "close", "discover": False, "check-credentials-found": None}


def children(options: dict[str, Any]) -> list[Any]:
    reactor = MemoryReactorClock()
    service = build_health_service(reactor, pool_of(reactor), options, 3306)
    return list(IServiceCollection(service))


class AssemblyTests(SynchronousTestCase):
    """Options in, services out."""

    def test_tcp(self) -> None:
        """--check tcp: a scheduler with the TCP check and the given timing."""
        [scheduler] = children({**BASE, "check": "tcp"})
        assert isinstance(scheduler, HealthScheduler)
        self.assertIsInstance(scheduler._check, TCPCheck)
        self.assertEqual((scheduler.interval, scheduler.timeout, scheduler.rise, scheduler.fall,
                          scheduler.close_unfit), (0.5, 0.25, 3, 4, True))

    def test_galera(self) -> None:
        """--check galera: its thread pool first, then the scheduler; discovery observes."""
        found = Credentials("u", "p")
        pool, scheduler = children({**BASE, "check": "galera", "discover": True,
                                    "check-credentials-found": found})
        self.assertIsInstance(pool, ThreadPoolService)
        assert isinstance(scheduler, HealthScheduler)
        self.assertIsInstance(scheduler._check, GaleraCheck)
        self.assertIsInstance(scheduler.observers[0], Discovery)


def warnings_while(build: Any) -> list[str]:
    """The texts of the log events emitted while C{build()} runs."""
    with capturedLogs() as seen:
        build()
    return [formatEvent(e) for e in seen if e.get("log_namespace") == "penbal.health"]


class WarningTests(SynchronousTestCase):
    """Settings that work but weaken a promise are logged at start-up."""

    def test_credentials_readable_by_others(self) -> None:
        """A credentials file readable by others: one warning saying how to fix it."""
        found = Credentials("u", "p", "file /x", "/x is readable by other users: chmod 600 it")
        texts = warnings_while(lambda: children({**BASE, "check": "galera",
                                                 "check-credentials-found": found}))
        self.assertEqual(texts, ["--check-credentials: /x is readable by other users:"
                                 " chmod 600 it"])

    def test_timeout_above_interval(self) -> None:
        """--check-timeout above --check-interval: the longer bound is named."""
        texts = warnings_while(lambda: children({**BASE, "check": "tcp", "check-interval": 0.5,
                                                 "check-timeout": 1.2}))
        self.assertEqual(len(texts), 1)
        self.assertIn("exceeds --check-interval 0.5s", texts[0])

    def test_quiet_by_default(self) -> None:
        """The usual settings log nothing."""
        self.assertEqual(warnings_while(lambda: children({**BASE, "check": "tcp"})), [])
