# -*- test-case-name: tests.galera.test_failover -*-
"""
Watching Galera nodes from outside the balancer: one thread per node reads its wsrep state
directly, as the check user, over a kept connection, so that a test knows when a node really
became (un)fit and can compare that with what the balancer did.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pymysql

from penbal.health.result import CheckResult


@dataclass(frozen=True)
class Observation:
    """One direct read of a node's wsrep state (C{values} empty if it failed).  C{start} is
    when the status was asked for, after any reconnect (a new connection takes a while on a
    loaded machine, and the state read is the one at the query); for a failed read, when the
    attempt began."""

    node: int
    start: float
    end: float
    values: dict[str, str] = field(default_factory=dict)
    error: str = ""

    def result(self) -> CheckResult:
        if self.error:
            return CheckResult(False, self.end - self.start, self.error)
        return CheckResult(True, self.end - self.start, values=self.values)


class Poller:
    """One thread per node reading its wsrep state every C{period} seconds as the check user,
    over a kept connection (reopened after an error), each read bounded by C{timeout}."""

    def __init__(self, ports: dict[int, int], user: str, password: str, period: float = 0.04,
                 timeout: float = 0.3, max_seconds: float = 300.0) -> None:
        self.ports = ports
        self.user = user
        self.password = password
        self.period = period
        self.timeout = timeout
        self.max_seconds = max_seconds
        self._observations: list[Observation] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(node,), daemon=True)
                         for node in ports]

    def start(self) -> Poller:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Observation]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout * 4 + 5)
        return self.observations()

    def observations(self) -> list[Observation]:
        with self._lock:
            return sorted(self._observations, key=lambda o: o.start)

    def _run(self, node: int) -> None:
        connection: Any = None
        ends = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < ends:
            started = time.monotonic()
            try:
                if connection is None:
                    connection = pymysql.connect(
                        host="127.0.0.1", port=self.ports[node], user=self.user,
                        password=self.password, connect_timeout=self.timeout,
                        read_timeout=self.timeout, write_timeout=self.timeout)
                values: dict[str, str] = {}
                asked = time.monotonic()
                with connection.cursor() as cursor:
                    for query in ("SHOW GLOBAL STATUS LIKE 'wsrep%'",
                                  "SHOW GLOBAL VARIABLES LIKE 'wsrep%'"):
                        cursor.execute(query)
                        for name, value in cursor.fetchall():
                            values[str(name).lower()] = "" if value is None else str(value)
                observation = Observation(node, asked, time.monotonic(), values)
            except Exception as e:
                observation = Observation(node, started, time.monotonic(), {}, repr(e))
                if connection is not None:
                    try:
                        connection.close()
                    except Exception:
                        pass
                connection = None
            with self._lock:
                self._observations.append(observation)
            self._stop.wait(self.period)
        if connection is not None:
            connection.close()
