"""
Tests for L{penbal.health.galera}: the status query, the worker thread discipline, and a frozen
server (accepts TCP, never speaks) costing one timeout.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import pymysql
import twisted.test
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.health.credentials import Credentials
from penbal.health.galera import (
    GaleraCheck,
    KeptConnections,
    describe_failure,
    read_wsrep,
    tls_options,
)
from penbal.health.result import CheckResult

CREDENTIALS = Credentials("penbal_check", "secret")
STATUS = [("wsrep_local_state", "4"), (b"WSREP_READY", b"ON"), ("wsrep_cluster_status", None)]
VARIABLES = [("wsrep_reject_queries", "NONE")]


class FakeCursor:
    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection
        self.rows: list[tuple[Any, Any]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, query: str) -> None:
        self.connection.queries.append(query)
        if self.connection.fail:
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server")
        self.rows = STATUS if "STATUS" in query else VARIABLES

    def fetchall(self) -> list[tuple[Any, Any]]:
        return self.rows


class FakeConnection:
    def __init__(self, fail: bool = False, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.queries: list[str] = []
        self.closed = False
        self.fail = fail

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


class ReadWsrepTests(SynchronousTestCase):
    """The blocking part that runs in a worker thread."""

    def connect(self, fail: bool = False) -> Callable[..., FakeConnection]:
        def connect(**kwargs: Any) -> FakeConnection:
            self.connection = FakeConnection(fail, **kwargs)
            return self.connection

        return connect

    def test_values(self) -> None:
        """Status and variables are merged, names lower case, bytes decoded, NULL empty."""
        values = read_wsrep(self.connect(), "127.0.0.1", 3361, CREDENTIALS, 0.5)
        self.assertEqual(values, {"wsrep_local_state": "4", "wsrep_ready": "ON",
                                  "wsrep_cluster_status": "", "wsrep_reject_queries": "NONE"})

    def test_queries(self) -> None:
        """Both SHOW GLOBAL queries are sent; SELECT 1 is not a check."""
        read_wsrep(self.connect(), "127.0.0.1", 3361, CREDENTIALS, 0.5)
        self.assertEqual(self.connection.queries, ["SHOW GLOBAL STATUS LIKE 'wsrep%'",
                                                   "SHOW GLOBAL VARIABLES LIKE 'wsrep%'"])

    def test_timeouts(self) -> None:
        """The timeout bounds connect, read and write."""
        read_wsrep(self.connect(), "127.0.0.1", 3361, CREDENTIALS, 0.5)
        kwargs = self.connection.kwargs
        self.assertEqual((kwargs["connect_timeout"], kwargs["read_timeout"],
                          kwargs["write_timeout"]), (0.5, 0.5, 0.5))
        self.assertEqual((kwargs["user"], kwargs["password"]), ("penbal_check", "secret"))

    def test_closed_on_error(self) -> None:
        """The connection is closed when a query fails."""
        self.assertRaises(pymysql.err.OperationalError, read_wsrep, self.connect(fail=True),
                          "127.0.0.1", 3361, CREDENTIALS, 0.5)
        self.assertTrue(self.connection.closed)


class KeptConnectionsTests(SynchronousTestCase):
    """One connection per node, kept between checks, dropped after any error."""

    def setUp(self) -> None:
        self.now = 0.0
        self.opened: list[FakeConnection] = []
        self.refuse = False

        def connect(**kwargs: Any) -> FakeConnection:
            if self.refuse:
                raise pymysql.err.OperationalError(2003, "Connection refused")
            connection = FakeConnection(**kwargs)
            self.opened.append(connection)
            return connection

        self.kept = KeptConnections(connect, CREDENTIALS, 1.0, None, lambda: self.now)

    def test_kept_between_checks(self) -> None:
        """Three checks of a node log in once and send the two queries three times."""
        for _ in range(3):
            values = self.kept.read("127.0.0.1", 3361)
        self.assertEqual(values["wsrep_local_state"], "4")
        self.assertEqual((len(self.opened), self.kept.logins), (1, 1))
        self.assertEqual(len(self.opened[0].queries), 6)
        self.assertFalse(self.opened[0].closed)

    def test_one_per_node(self) -> None:
        """Each node has its own connection."""
        self.kept.read("127.0.0.1", 3361)
        self.kept.read("127.0.0.1", 3362)
        self.kept.read("127.0.0.1", 3361)
        self.assertEqual([c.kwargs["port"] for c in self.opened], [3361, 3362])

    def test_restarted_node_logged_in_afresh(self) -> None:
        """The kept connection fails at once (the node restarted): it is closed, and the same
        check logs in again and answers."""
        self.kept.read("127.0.0.1", 3361)
        self.opened[0].fail = True
        values = self.kept.read("127.0.0.1", 3361)
        self.assertEqual(values["wsrep_ready"], "ON")
        self.assertTrue(self.opened[0].closed)
        self.assertEqual((len(self.opened), self.kept.logins), (2, 2))

    def test_hung_node_costs_one_timeout(self) -> None:
        """The kept connection fails only after waiting (a hung node): the check fails there,
        without a second wait, and the next check logs in afresh."""
        self.kept.read("127.0.0.1", 3361)
        first = self.opened[0]
        first.fail = True
        original = first.cursor

        def slow_cursor() -> FakeCursor:
            self.now += 1.0  # the read timeout went by
            return original()

        first.cursor = slow_cursor  # type: ignore[method-assign]
        self.assertRaises(pymysql.err.OperationalError, self.kept.read, "127.0.0.1", 3361)
        self.assertTrue(first.closed)
        self.assertEqual(len(self.opened), 1)
        self.kept.read("127.0.0.1", 3361)
        self.assertEqual(len(self.opened), 2)

    def test_failed_login_keeps_nothing(self) -> None:
        """A refused login raises and keeps nothing; a failed first read closes the new
        connection."""
        self.refuse = True
        self.assertRaises(pymysql.err.OperationalError, self.kept.read, "127.0.0.1", 3361)
        self.refuse = False
        self.kept.read("127.0.0.1", 3361)
        self.opened[0].fail = True  # fails at once: a fresh login is tried, and fails too

        def always_failing(**kwargs: Any) -> FakeConnection:
            connection = FakeConnection(fail=True, **kwargs)
            self.opened.append(connection)
            return connection

        self.kept._connect = always_failing
        self.assertRaises(pymysql.err.OperationalError, self.kept.read, "127.0.0.1", 3361)
        self.assertTrue(all(c.closed for c in self.opened))

    def test_close_all(self) -> None:
        """At stop every kept connection is closed."""
        self.kept.read("127.0.0.1", 3361)
        self.kept.read("127.0.0.1", 3362)
        self.kept.close_all()
        self.assertTrue(all(c.closed for c in self.opened))
        self.kept.read("127.0.0.1", 3361)
        self.assertEqual(len(self.opened), 3)


class TLSOptionsTests(SynchronousTestCase):
    """TLS for the check's connections."""

    def test_no_ca_no_tls(self) -> None:
        """Without ssl-ca, TLS is off (no TLS context built at every connect)."""
        self.assertEqual(tls_options(CREDENTIALS), {"ssl_disabled": True})

    def test_ca(self) -> None:
        """With ssl-ca, one context verifying the chain against that CA is used."""
        ca = os.path.join(os.path.dirname(twisted.test.__file__), "server.pem")
        options = tls_options(Credentials("u", "p", ssl_ca=ca))
        context = options["ssl"]
        self.assertIsInstance(context, ssl.SSLContext)
        self.assertEqual(context.verify_mode, ssl.CERT_REQUIRED)
        self.assertFalse(context.check_hostname)

    def test_passed_to_driver(self) -> None:
        """read_wsrep passes the TLS options to the driver."""
        seen: dict[str, Any] = {}

        def connect(**kwargs: Any) -> FakeConnection:
            seen.update(kwargs)
            return FakeConnection(**kwargs)

        read_wsrep(connect, "127.0.0.1", 3361, CREDENTIALS, 0.5, {"ssl_disabled": True})
        self.assertIs(seen["ssl_disabled"], True)


class DescribeTests(SynchronousTestCase):
    """Errors as one line."""

    def test_mysql_error(self) -> None:
        """A driver error shows its code and message."""
        failure = Failure(pymysql.err.OperationalError(2003, "Can't connect"))
        self.assertEqual(describe_failure(failure), "MySQL 2003: Can't connect")

    def test_login_refused(self) -> None:
        """A refused login says what to fix."""
        failure = Failure(pymysql.err.OperationalError(1045, "Access denied"))
        self.assertIn("fix the check credentials", describe_failure(failure))

    def test_other_error(self) -> None:
        """Anything else shows its type."""
        self.assertEqual(describe_failure(Failure(OSError("boom"))), "OSError: boom")


class FakeThreadPool:
    """Work is run when the test says so."""

    def __init__(self) -> None:
        self.work: list[tuple[Callable[[bool, object], None], Callable[..., Any], tuple[Any, ...]]]
        self.work = []

    def callInThreadWithCallback(self, onResult: Callable[[bool, object], None],
                                 f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        self.work.append((onResult, f, args))

    def finish(self, index: int = 0) -> None:
        onResult, f, args = self.work.pop(index)
        try:
            result = f(*args)
        except Exception:
            onResult(False, Failure())
        else:
            onResult(True, result)


class ImmediateReactor:
    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        f(*args, **kw)


class GaleraCheckTests(SynchronousTestCase):
    """The reactor side of the check."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.pool = FakeThreadPool()
        self.answers: list[dict[str, str] | Exception] = []

        def connect(**kwargs: Any) -> FakeConnection:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return FakeConnection(**kwargs)

        self.check = GaleraCheck(ImmediateReactor(), self.pool, self.clock,  # type: ignore[arg-type]
                                 CREDENTIALS, 0.5, connect=connect)
        self.backend = Backend(BackendSpec("127.0.0.1", 3361))

    def results(self, d: Deferred[CheckResult]) -> list[CheckResult | Failure]:
        out: list[CheckResult | Failure] = []
        d.addBoth(out.append)
        return out

    def test_answer(self) -> None:
        """A worker's answer becomes a reachable result with the values and the latency."""
        got = self.results(self.check.check(self.backend))
        self.answers.append({})
        self.clock.advance(0.04)
        self.pool.finish()
        [result] = got
        assert isinstance(result, CheckResult)
        self.assertTrue(result.reachable)
        self.assertEqual(result.values["wsrep_local_state"], "4")
        self.assertEqual(result.latency, 0.04)

    def test_error(self) -> None:
        """A driver error becomes an unreachable result saying what happened."""
        got = self.results(self.check.check(self.backend))
        self.answers.append(pymysql.err.OperationalError(2003, "Connection refused"))
        self.pool.finish()
        [result] = got
        assert isinstance(result, CheckResult)
        self.assertEqual((result.reachable, result.error),
                         (False, "MySQL 2003: Connection refused"))

    def test_one_worker_per_backend(self) -> None:
        """A check of a backend whose previous worker still runs waits for it."""
        first = self.check.check(self.backend)
        self.results(first)
        first.cancel()  # the scheduler's timeout
        second = self.results(self.check.check(self.backend))
        self.assertEqual(len(self.pool.work), 1)
        self.assertTrue(self.check.busy(self.backend))
        self.answers.append({})
        self.pool.finish()  # the late first worker: its answer is dropped
        self.assertEqual(second, [])
        self.assertEqual(len(self.pool.work), 1)
        self.answers.append({})
        self.pool.finish()
        self.assertTrue(second and isinstance(second[0], CheckResult) and second[0].reachable)
        self.assertFalse(self.check.busy(self.backend))

    def test_cancelled_while_waiting(self) -> None:
        """A waiting check that is cancelled starts no worker."""
        for _ in range(2):
            d = self.check.check(self.backend)
            self.results(d)
            d.cancel()
        self.answers.append({})
        self.pool.finish()
        self.assertEqual(self.pool.work, [])


class FrozenServerTests(TestCase):
    """A real worker thread against a socket that accepts and never speaks."""

    def setUp(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.addCleanup(self.listener.close)
        self.threadpool = ThreadPool(0, 2, name="test-check")
        self.threadpool.start()
        self.addCleanup(self.threadpool.stop)

    def check(self, port: int, timeout: float) -> Deferred[CheckResult]:
        check = GaleraCheck(global_reactor, self.threadpool, global_reactor,  # type: ignore[arg-type]
                            CREDENTIALS, timeout)
        return check.check(Backend(BackendSpec("127.0.0.1", port)))

    async def test_frozen_costs_one_timeout(self) -> None:
        """The handshake never comes: the check fails after about one timeout, not more."""
        started = time.monotonic()
        result = await self.check(self.listener.getsockname()[1], 0.3)
        took = time.monotonic() - started
        self.assertFalse(result.reachable)
        self.assertIn("timed out", result.error)
        self.assertGreaterEqual(took, 0.29)
        self.assertLess(took, 0.9)

    async def test_refused(self) -> None:
        """Nobody listening: the check fails at once."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        started = time.monotonic()
        result = await self.check(port, 2.0)
        self.assertFalse(result.reachable)
        self.assertIn("2003", result.error)
        self.assertLess(time.monotonic() - started, 1.0)
