# -*- test-case-name: tests.health.test_galera -*-
"""
The C{--check galera} health check: with PyMySQL in a worker thread, read
C{SHOW GLOBAL STATUS LIKE 'wsrep%'} and C{SHOW GLOBAL VARIABLES LIKE 'wsrep%'} over one
connection per node, kept from one check to the next (L{KeptConnections}).

Connect, read and write are each bounded by the check timeout, so a frozen node (it accepts TCP
and never speaks) costs one timeout.  At most one worker thread per backend is busy: a new
check of a backend whose previous one is still running waits for it, within its own timeout.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from penbal.backend import Backend
from penbal.health.credentials import Credentials
from penbal.health.result import CheckResult
from penbal.interfaces import IHealthCheck

STATUS_QUERIES = ("SHOW GLOBAL STATUS LIKE 'wsrep%'", "SHOW GLOBAL VARIABLES LIKE 'wsrep%'")

Connect = Callable[..., Any]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return str(value)


def tls_options(credentials: Credentials) -> dict[str, Any]:
    """
    The driver's TLS options: TLS verified against C{ssl-ca} of the credentials file if it
    names one (the context is built once), else none at all.  Without this, PyMySQL builds a
    fresh TLS context at every connect (about 25 ms of CPU) to try TLS opportunistically.
    """
    if not credentials.ssl_ca:
        return {"ssl_disabled": True}
    context = ssl.create_default_context(cafile=credentials.ssl_ca)
    # Nodes are usually named by IP address in the backend list: verify the chain only.
    context.check_hostname = False
    return {"ssl": context}


def open_connection(
    connect: Connect,
    host: str,
    port: int,
    credentials: Credentials,
    timeout: float,
    tls: dict[str, Any] | None = None,
) -> Any:
    """Blocking: log in to C{host:port}, connect, read and write each bounded by C{timeout}."""
    return connect(
        host=host,
        port=port,
        user=credentials.user,
        password=credentials.password,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        autocommit=True,
        **(tls if tls is not None else {"ssl_disabled": True}),
    )


def read_values(connection: Any) -> dict[str, str]:
    """Blocking: the C{wsrep%} status and variables, merged, names in lower case."""
    values: dict[str, str] = {}
    with connection.cursor() as cursor:
        for query in STATUS_QUERIES:
            cursor.execute(query)
            for name, value in cursor.fetchall():
                values[_text(name).lower()] = _text(value)
    return values


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:
        pass


def read_wsrep(
    connect: Connect,
    host: str,
    port: int,
    credentials: Credentials,
    timeout: float,
    tls: dict[str, Any] | None = None,
) -> dict[str, str]:
    """
    Blocking: log in to C{host:port}, return the C{wsrep%} status and variables, log out.
    """
    connection = open_connection(connect, host, port, credentials, timeout, tls)
    try:
        return read_values(connection)
    finally:
        _close_quietly(connection)


class KeptConnections:
    """
    One logged-in connection per node, kept from one check to the next, so that a check is
    two queries on an open connection instead of a TCP handshake, a MySQL login and a logout.

    A kept connection that fails is closed and forgotten.  If it failed at once (the node
    restarted, or closed idle connections), the same check logs in afresh: a restarted node
    is not reported down because of a connection it never knew.  If it failed only after
    waiting (a hung node), the check fails there, so a hung node still costs one timeout.

    Each node's connection is used by one worker thread at a time (L{GaleraCheck} waits for a
    node's previous worker), never by two at once.
    """

    def __init__(
        self,
        connect: Connect,
        credentials: Credentials,
        timeout: float,
        tls: dict[str, Any] | None,
        monotonic: Callable[[], float],
    ) -> None:
        self._connect = connect
        self._credentials = credentials
        self._timeout = timeout
        self._tls = tls
        self._monotonic = monotonic
        self._kept: dict[tuple[str, int], Any] = {}
        #: Logins so far (a measure of the load the checks put on the nodes).
        self.logins = 0

    def read(self, host: str, port: int) -> dict[str, str]:
        """Blocking, in a worker thread: the node's wsrep values."""
        key = (host, port)
        connection = self._kept.pop(key, None)
        if connection is not None:
            started = self._monotonic()
            try:
                values = read_values(connection)
            except Exception:
                _close_quietly(connection)
                if self._monotonic() - started >= self._timeout / 2:
                    raise  # it waited: a hung node, one timeout is all it costs
            else:
                self._kept[key] = connection
                return values
        self.logins += 1
        connection = open_connection(self._connect, host, port, self._credentials,
                                     self._timeout, self._tls)
        try:
            values = read_values(connection)
        except Exception:
            _close_quietly(connection)
            raise
        self._kept[key] = connection
        return values

    def forget(self, host: str, port: int) -> None:
        """Blocking: close the connection to a node (removed from the table)."""
        connection = self._kept.pop((host, port), None)
        if connection is not None:
            _close_quietly(connection)

    def close_all(self) -> None:
        """Blocking: close every kept connection (penbal stops)."""
        for key in list(self._kept):
            self.forget(*key)


def describe_failure(failure: Failure) -> str:
    """One line for a failed check: the MySQL error code and message, or the exception."""
    error = failure.value
    args: tuple[object, ...] = tuple(getattr(error, "args", ()))
    if len(args) == 2 and isinstance(args[0], int):
        code, message = args[0], args[1]
        if code == 1045:
            return f"check login refused (MySQL {code}: {message}): fix the check credentials"
        return f"MySQL {code}: {message}"
    return f"{type(error).__name__}: {error}"


def _default_connect() -> Connect:
    import pymysql

    connect: Connect = pymysql.connect
    return connect


@implementer(IHealthCheck)
class GaleraCheck:
    """Read a Galera node's wsrep state over the MySQL protocol, off the reactor thread."""

    name = "galera"

    def __init__(
        self,
        reactor: IReactorFromThreads,
        threadpool: ThreadPool,
        clock: IReactorTime,
        credentials: Credentials,
        timeout: float,
        connect: Connect | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._reactor = reactor
        self._threadpool = threadpool
        self._clock = clock
        self._credentials = credentials
        self._timeout = timeout
        self._connect = connect if connect is not None else _default_connect()
        self._tls = tls_options(credentials)
        #: The nodes' kept connections, each read in a worker thread.
        self.connections = KeptConnections(
            self._connect, credentials, timeout, self._tls,
            monotonic if monotonic is not None else clock.seconds,
        )
        # The worker of each backend (by address) that has not finished yet.
        self._busy: dict[str, Deferred[dict[str, str]]] = {}

    def busy(self, backend: Backend) -> bool:
        """True while a worker thread still reads C{backend}."""
        return backend.address in self._busy

    def check(self, backend: Backend) -> Deferred[CheckResult]:
        # Cancelling this Deferred (the caller's timeout) fires it with CancelledError at once;
        # the worker's late answer is then dropped.
        result: Deferred[CheckResult] = Deferred()
        started = self._clock.seconds()
        key = backend.address
        spec = backend.spec

        def answered(values: dict[str, str]) -> None:
            if not result.called:
                elapsed = self._clock.seconds() - started
                result.callback(CheckResult(True, elapsed, values=values))

        def failed(failure: Failure) -> None:
            if not result.called:
                elapsed = self._clock.seconds() - started
                result.callback(CheckResult(False, elapsed, describe_failure(failure)))

        def launch() -> None:
            if result.called:
                return
            work: Deferred[dict[str, str]] = deferToThreadPool(
                self._reactor, self._threadpool, self.connections.read, spec.host, spec.port
            )
            if not work.called:
                self._busy[key] = work
            work.addBoth(self._release, key, work)
            work.addCallbacks(answered, failed)

        previous = self._busy.get(key)
        if previous is None:
            launch()
        else:

            def then(outcome: object) -> object:
                launch()
                return outcome

            previous.addBoth(then)
        return result

    def _release(self, outcome: object, key: str, work: Deferred[dict[str, str]]) -> object:
        if self._busy.get(key) is work:
            del self._busy[key]
        return outcome
