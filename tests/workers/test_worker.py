# -*- test-case-name: tests.workers.test_worker -*-
"""
Tests of a worker's end of the channel: when it starts relaying, what it reports, and that it
stops when the main process goes away.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState
from penbal.relay.config import RelayConfig
from penbal.relay.leanport import LeanTCPPort
from penbal.workers.state import state_message
from penbal.workers.worker import REPORT_INTERVAL, AdoptedPortEndpoint, WorkerLink
from tests.control.fixtures import connect, make_runtime


class LinkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.main, _ = make_runtime()
        self.runtime, self.harness = make_runtime()
        self.started: list[bool] = []
        self.lost: list[bool] = []

    def link(self, fd: int | None) -> WorkerLink:
        self.endpoint = AdoptedPortEndpoint(self.harness.reactor, fd)
        link = WorkerLink(self.runtime, self.harness.factory, self.endpoint,
                          lambda: self.started.append(True), lambda: self.lost.append(True))
        self.transport = StringTransport()
        link.makeConnection(self.transport)
        self.addCleanup(self.close, link)
        return link

    def close(self, link: WorkerLink) -> None:
        if not self.lost:
            link.connectionLost(Failure(ConnectionDone()))

    def push(self, link: WorkerLink) -> None:
        config, state = state_message(self.main)
        link.push(config, state)

    def test_listens_after_first_push(self) -> None:
        """A worker with its socket starts relaying once the first state is applied."""
        link = self.link(3)
        self.assertEqual(self.started, [])
        self.main.balancer.pool[1].admin = AdminState.DOWN
        self.push(link)
        self.assertEqual(self.started, [True])
        self.assertIs(self.runtime.balancer.pool[1].admin, AdminState.DOWN)
        self.push(link)
        self.assertEqual(self.started, [True])

    def test_spare_listens_once_served(self) -> None:
        """A spare worker starts relaying once it is handed a socket too; a second one is
        closed."""
        link = self.link(None)
        self.push(link)
        self.assertEqual(self.started, [])
        first, second = socket.socket(), socket.socket()
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        link.serve(os.dup(first.fileno()))
        self.assertEqual(self.started, [True])
        extra = os.dup(second.fileno())
        link.serve(extra)
        with self.assertRaises(OSError):
            os.fstat(extra)

    def test_reports_changes(self) -> None:
        """Once relaying, figures are reported every REPORT_INTERVAL when they changed, not
        otherwise."""
        link = self.link(3)
        self.harness.reactor.advance(REPORT_INTERVAL)
        self.assertEqual(self.transport.value(), b"")  # not relaying yet
        self.push(link)
        self.transport.clear()
        self.harness.reactor.advance(REPORT_INTERVAL)
        self.assertIn(b"Report", self.transport.value())
        self.transport.clear()
        self.harness.reactor.advance(REPORT_INTERVAL)
        self.assertEqual(self.transport.value(), b"")
        self.runtime.balancer.pool[0].counters.total += 1
        self.harness.reactor.advance(REPORT_INTERVAL)
        self.assertIn(b"Report", self.transport.value())

    def test_reopen_access_log(self) -> None:
        """The main process passes on a reopen: the worker reopens its own access log (the
        records of the connections it relays are written there)."""
        reopened: list[bool] = []

        class Sink:
            def write(self, record: object) -> None:
                pass

            def reopen(self) -> None:
                reopened.append(True)

        self.runtime.connlog.access = Sink()
        link = self.link(3)
        link.reopen_access_log()
        self.assertEqual(reopened, [True])

    def test_reports_ended_connections_once(self) -> None:
        """Connections that ended since the last report are in the next one, once; a report
        goes out for them even when nothing else changed."""
        from penbal.connlog import ConnectionRecord

        sent: list[dict[str, object]] = []
        link = self.link(3)
        self.push(link)
        link.callRemote = lambda command, **kw: sent.append(kw)  # type: ignore[method-assign]
        self.harness.reactor.advance(REPORT_INTERVAL)
        self.assertEqual(sent[-1]["figures"]["ended"], [])  # type: ignore[index]
        count = len(sent)
        self.harness.reactor.advance(REPORT_INTERVAL)
        self.assertEqual(len(sent), count)  # nothing changed, nothing sent
        record = ConnectionRecord("127.0.0.2:5000", "127.0.0.1:4000", 1, 2, 3.0, 0.5,
                                  "client", True)
        self.runtime.connlog.ended(record)
        self.harness.reactor.advance(REPORT_INTERVAL)
        self.assertEqual(len(sent), count + 1)
        self.assertEqual(sent[-1]["figures"]["ended"],  # type: ignore[index]
                         [["127.0.0.2:5000", "127.0.0.1:4000", 1, 2, 3.0, 0.5, "client", True]])
        self.harness.reactor.advance(REPORT_INTERVAL)
        self.assertEqual(sent[-1]["figures"]["ended"], [])  # type: ignore[index]

    def test_remove_now(self) -> None:
        """The main process removed a backend with its connections: the worker closes its
        own to it and takes it out of its table, found by number, or by address when the
        number no longer matches."""
        link = self.link(3)
        self.push(link)
        front: Any = connect(self.harness)
        busy = front.backend
        pool = self.runtime.balancer.pool
        other = next(backend for backend in pool if backend is not busy)
        link.remove_now(busy.index + 5, busy.address)  # a number off the table: by address
        self.assertNotIn(busy, list(pool))
        self.assertTrue(front.transport.disconnecting)
        self.assertEqual(front.ended_by, "backend removed by the operator")
        link.remove_now(0, "127.0.0.1:1")  # not in the table: nothing happens
        self.assertEqual(list(pool), [other])

    def test_main_gone(self) -> None:
        """The channel closed: the main process is gone."""
        link = self.link(3)
        link.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.lost, [True])


class AdoptedPortEndpointTests(SynchronousTestCase):
    """A worker's endpoint on the listening socket it was handed."""

    def setUp(self) -> None:
        self.runtime, self.harness = make_runtime()
        self.shared = socket.socket()
        self.addCleanup(self.shared.close)
        self.shared.bind(("127.0.0.1", 0))
        self.shared.listen(8)
        self.fd = os.dup(self.shared.fileno())

    def test_lean_relay_gets_a_lean_port(self) -> None:
        """On the lean path the worker listens with penbal's own port, on a duplicate: the
        descriptor it was handed is closed, the main process's socket stays open."""
        self.harness.factory.config = RelayConfig(lean=True)
        endpoint = AdoptedPortEndpoint(self.harness.reactor, self.fd)
        port = self.successResultOf(endpoint.listen(self.harness.factory))
        assert isinstance(port, LeanTCPPort)
        self.addCleanup(port.stopListening)
        self.assertIn(port, self.harness.reactor.readers)
        self.assertEqual(port.getHost().port, self.shared.getsockname()[1])
        with self.assertRaises(OSError):
            os.fstat(self.fd)
        self.successResultOf(port.stopListening())
        client = socket.create_connection(self.shared.getsockname(), timeout=10)
        self.addCleanup(client.close)
        self.shared.settimeout(10)
        self.shared.accept()[0].close()  # the main process's socket still listens

    def test_stock_relay_gets_twisted_port(self) -> None:
        """On the stock path the socket is adopted by the reactor (adoptStreamPort)."""
        endpoint = AdoptedPortEndpoint(self.harness.reactor, self.fd)
        self.successResultOf(endpoint.listen(self.harness.factory))
        ((fd, family, factory),) = self.harness.reactor.adoptedPorts
        self.assertEqual((fd, family, factory), (self.fd, socket.AF_INET, self.harness.factory))
