# -*- test-case-name: tests.relay.test_connect -*-
"""
Tests of the connectors (L{penbal.relay.connect}): each reports one attempt through the
L{penbal.relay.attempt.Attempt} interface, whichever way it connects.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.relay.connect import Connector, DirectConnector, Handshake, TwistedConnector


class Recorder:
    """An attempt that records what it heard."""

    def __init__(self) -> None:
        self.heard: list[object] = []

    def made(self) -> Protocol:
        protocol = Protocol()
        self.heard.append(protocol)
        return protocol

    def failed(self, why: str) -> None:
        self.heard.append(why)


def backend(host: str = "127.0.0.1", port: int = 4000) -> Backend:
    return Backend(BackendSpec(host, port))


class TwistedConnectorTests(SynchronousTestCase):
    """connectTCP, reported as made or failed."""

    def test_connects_with_the_timeout(self) -> None:
        """One connectTCP per attempt, to the backend, with the timeout given."""
        reactor = MemoryReactorClock()
        connector: Connector = TwistedConnector(reactor)
        connecting = connector.connect(backend(port=4001), Recorder(), 2.5)
        host, port, _, timeout, _ = reactor.tcpClients[-1]
        self.assertEqual((host, port, timeout), ("127.0.0.1", 4001, 2.5))
        self.assertIs(connecting, reactor.connectors[-1])
        self.assertIsNone(connector.handshake)

    def test_made_and_failed(self) -> None:
        """The connection's protocol is the attempt's; a failure is told in words."""
        reactor = MemoryReactorClock()
        attempt = Recorder()
        TwistedConnector(reactor).connect(backend(), attempt, 3)
        factory: Any = reactor.tcpClients[-1][2]
        protocol = factory.buildProtocol(None)
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError("no")))
        self.assertEqual(attempt.heard, [protocol, str(ConnectionRefusedError("no"))])


class Fallback:
    """A connector that records what was passed on to it."""

    handshake: Handshake | None = None

    def __init__(self) -> None:
        self.asked: list[tuple[Backend, object, float]] = []

    def connect(self, target: Backend, attempt: Any, timeout: float) -> Any:
        self.asked.append((target, attempt, timeout))
        return self


class DirectConnectorTests(SynchronousTestCase):
    """IP literals with one socket; host names passed on."""

    def test_host_names_fall_back(self) -> None:
        """A backend given by name goes to the fallback connector, timeout and all."""
        fallback = Fallback()
        attempt = Recorder()
        named = backend("db.invalid")
        connecting = DirectConnector(MemoryReactorClock(), MemoryReactorClock(),
                                     fallback).connect(named, attempt, 1.5)
        self.assertIs(connecting, fallback)
        self.assertEqual(fallback.asked, [(named, attempt, 1.5)])
        self.assertEqual(attempt.heard, [])
