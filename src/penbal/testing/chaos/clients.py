# -*- test-case-name: tests.galera.test_chaos -*-
"""
The load of a chaos run: clients that work through the balancer (money transfers, total
reads, version reads, and now and then a new connection), and one writer that raises the
version row directly on one node (the next one when that node fails).

Each client is a thread with its own seeded random generator; every loop is bounded by a stop
event and a deadline, every socket operation by a timeout.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pymysql

import penbal.testing.chaos.bank as bank
from penbal.testing.chaos.journal import Commit, Connect, Journal, Transaction

Clock = Callable[[], float]

#: How often each client does what, in relative weights.
MIX = {"transfer": 4, "total": 2, "version": 3, "reconnect": 1}


@dataclass(frozen=True)
class Login:
    """Where and as whom to connect; the timeouts bound every wait."""

    host: str
    port: int
    user: str
    password: str
    database: str
    connect_timeout: float = 5.0
    read_timeout: float = 15.0

    def connect(self) -> Any:
        return pymysql.connect(
            host=self.host, port=self.port, user=self.user, password=self.password,
            database=self.database, autocommit=True, connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout, write_timeout=self.read_timeout)


def close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:
        pass


class Client(threading.Thread):
    """One client connection through the balancer, doing a random mix of work."""

    def __init__(self, login: Login, journal: Journal, rng: random.Random, clock: Clock,
                 stop: threading.Event, ends: float, pause: tuple[float, float] = (0.05, 0.15),
                 retry: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.login = login
        self.journal = journal
        self.rng = rng
        self.clock = clock
        self.stop_event = stop
        self.ends = ends
        self.pause = pause
        self.retry = retry
        self._kinds = list(MIX)
        self._weights = list(MIX.values())

    def run(self) -> None:
        connection: Any = None
        node = ""
        while not self.stop_event.is_set() and self.clock() < self.ends:
            if connection is None:
                connection, node = self.connect()
                if connection is None:
                    self.stop_event.wait(self.retry)
                    continue
            (kind,) = self.rng.choices(self._kinds, self._weights)
            if kind == "reconnect":
                close_quietly(connection)
                connection = None
                continue
            if not self.work(connection, node, kind):
                close_quietly(connection)
                connection = None
            self.stop_event.wait(self.rng.uniform(*self.pause))
        if connection is not None:
            close_quietly(connection)

    def connect(self) -> tuple[Any, str]:
        """Connect through the balancer and ask which node answered; record the attempt."""
        start = self.clock()
        connection = None
        try:
            connection = self.login.connect()
            node = bank.node_name(connection)
        except Exception as e:
            if connection is not None:
                close_quietly(connection)
            self.journal.connect(Connect(start, self.clock(), None, bank.describe(e)))
            return None, ""
        self.journal.connect(Connect(start, self.clock(), node))
        return connection, node

    def work(self, connection: Any, node: str, kind: str) -> bool:
        """Do one transaction of C{kind}; return whether the connection is still good."""
        start = self.clock()
        value: int | None = None
        try:
            if kind == "transfer":
                source, target = self.rng.sample(range(1, bank.ACCOUNTS + 1), 2)
                bank.transfer(connection, source, target, self.rng.randint(1, 100))
            elif kind == "total":
                value = bank.total(connection)
            else:
                value = bank.version(connection)
        except Exception as e:
            conflict = bank.error_code(e) == bank.CONFLICT
            self.journal.transaction(Transaction(kind, start, self.clock(), node, conflict,
                                                 conflict=conflict, error=bank.describe(e)))
            return conflict
        self.journal.transaction(Transaction(kind, start, self.clock(), node, True, value))
        return True


class VersionWriter(threading.Thread):
    """
    Raises the version row every C{period} seconds straight on one node (not through the
    balancer), moving to the next node in C{logins} after an error, and records each
    acknowledged commit.
    """

    def __init__(self, logins: Sequence[Login], journal: Journal, clock: Clock,
                 stop: threading.Event, ends: float, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.logins = list(logins)
        self.journal = journal
        self.clock = clock
        self.stop_event = stop
        self.ends = ends
        self.period = period
        self.errors = 0

    def run(self) -> None:
        connection: Any = None
        turn = 0
        written = 0
        while not self.stop_event.is_set() and self.clock() < self.ends:
            try:
                if connection is None:
                    connection = self.logins[turn % len(self.logins)].connect()
                written += 1
                bank.raise_version(connection, written)
                self.journal.commit(Commit(written, self.clock()))
            except Exception:
                self.errors += 1
                if connection is not None:
                    close_quietly(connection)
                connection = None
                turn += 1
            self.stop_event.wait(self.period)
        if connection is not None:
            close_quietly(connection)
