# -*- test-case-name: tests.test_service_listen -*-
"""
Tests of the choice of listening port: penbal's own lean port for a plain TCP LISTEN on the
lean path, Twisted's endpoints for everything else.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.endpoints import (
    AdoptedStreamServerEndpoint,
    TCP4ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import ListenSpec
from penbal.edges.acl import AccessList
from penbal.edges.gate import Edges
from penbal.relay.config import RelayConfig
from penbal.relay.leanport import LeanAdoptedEndpoint, LeanTCPPort, LeanTCPServerEndpoint
from penbal.service import StartupError, TCPBalancerService, relay_endpoints
from tests.relay.fixtures import RelayHarness


class RelayEndpointsTests(SynchronousTestCase):
    """relay_endpoints."""

    def setUp(self) -> None:
        self.harness = RelayHarness()
        self.factory = self.harness.factory
        self.factory.config = RelayConfig(lean=True)

    def endpoint(self, description: str, other: Any = serverFromString) -> IStreamServerEndpoint:
        return relay_endpoints(self.factory, other)(self.harness.reactor, description)

    def test_plain_tcp_is_lean(self) -> None:
        """tcp: and tcp6: LISTENs get penbal's own port, with their port, interface and
        backlog."""
        endpoint = self.endpoint("tcp:3306:interface=127.0.0.1:backlog=7")
        assert isinstance(endpoint, LeanTCPServerEndpoint)
        self.assertEqual((endpoint._port, endpoint._interface, endpoint._backlog),
                         (3306, "127.0.0.1", 7))
        self.assertIsInstance(self.endpoint(r"tcp6:3306:interface=\:\:1"), LeanTCPServerEndpoint)

    def test_stock_path_is_twisted(self) -> None:
        """On the stock path, Twisted's endpoint."""
        self.factory.config = RelayConfig(lean=False)
        self.assertIsInstance(self.endpoint("tcp:3306"), TCP4ServerEndpoint)
        self.factory.edges = Edges(self.harness.reactor, self.harness.reactor,
                                   proxy_networks=AccessList())
        self.assertIsInstance(self.endpoint("tcp:3306"), TCP4ServerEndpoint)

    def test_proxy_clients_are_lean(self) -> None:
        """PROXY headers to read (--accept-proxy) leave a plain TCP LISTEN on the lean port:
        the header reader runs on the lean transport, then hands it to the client's leg."""
        self.factory.config = RelayConfig(lean=True)
        self.factory.edges = Edges(self.harness.reactor, self.harness.reactor,
                                   proxy_networks=AccessList())
        self.assertIsInstance(self.endpoint("tcp:3306"), LeanTCPServerEndpoint)

    def test_systemd_tcp_socket_is_lean(self) -> None:
        """A TCP socket passed by systemd (Twisted's systemd: endpoint found it) is adopted
        by penbal's own port; a unix one stays Twisted's."""
        shared = socket.socket()
        self.addCleanup(shared.close)
        fd = shared.fileno()
        adopted = AdoptedStreamServerEndpoint(self.harness.reactor, fd, socket.AF_INET)
        endpoint = self.endpoint("systemd:domain=INET:index=0", lambda reactor, text: adopted)
        assert isinstance(endpoint, LeanAdoptedEndpoint)
        self.assertEqual(endpoint.fd, fd)
        unix = AdoptedStreamServerEndpoint(self.harness.reactor, fd, socket.AF_UNIX)
        self.assertIs(self.endpoint("systemd:domain=UNIX:index=0", lambda reactor, text: unix),
                      unix)
        self.factory.config = RelayConfig(lean=False)
        self.assertIs(self.endpoint("systemd:domain=INET:index=0", lambda reactor, text: adopted),
                      adopted)

    def test_other_kinds_are_twisted(self) -> None:
        """A unix socket (and any other kind) is Twisted's."""
        self.assertIsInstance(self.endpoint("unix:/tmp/penbal-x.sock"), UNIXServerEndpoint)

    def test_other_keeps_its_checks(self) -> None:
        """The other endpoint maker still judges every string (its errors stand), and a tcp
        string it does not make a plain TCP endpoint of stays its own."""
        def refusing(reactor: Any, description: str) -> IStreamServerEndpoint:
            raise ValueError("--tls-min-version needs a TLS LISTEN")

        with self.assertRaises(ValueError):
            self.endpoint("tcp:3306", refusing)
        wrapped = serverFromString(self.harness.reactor, "unix:/tmp/penbal-y.sock")
        self.assertIs(self.endpoint("tcp:3306", lambda reactor, text: wrapped), wrapped)


class ServiceListenTests(SynchronousTestCase):
    """TCPBalancerService listens with relay_endpoints by default."""

    def test_listens_on_a_lean_port(self) -> None:
        """A lean factory's service listens on a LeanTCPPort (port 0: the real port is
        known), attached to the factory, and closes it on stop."""
        harness = RelayHarness()
        harness.factory.config = RelayConfig(lean=True)
        service = TCPBalancerService(harness.reactor, ListenSpec("tcp:0:interface=127.0.0.1", 0),
                                     harness.factory)
        service.privilegedStartService()
        port = service.port
        assert isinstance(port, LeanTCPPort)
        self.addCleanup(port.stopListening)
        self.assertNotEqual(port.getHost().port, 0)
        self.assertIn(port, harness.reactor.readers)
        self.assertEqual(harness.factory._ports, [harness.port, port])
        self.successResultOf(service.stopService())
        self.assertNotIn(port, harness.reactor.readers)
        assert port.socket is not None
        self.assertEqual(port.socket.fileno(), -1)

    def test_cannot_listen(self) -> None:
        """A port in use is a one-line start-up error."""
        harness = RelayHarness()
        harness.factory.config = RelayConfig(lean=True)
        first = TCPBalancerService(harness.reactor, ListenSpec("tcp:0:interface=127.0.0.1", 0),
                                   harness.factory)
        first.privilegedStartService()
        assert first.port is not None
        self.addCleanup(first.port.stopListening)
        taken = first.port.getHost().port  # type: ignore[attr-defined]
        second = TCPBalancerService(harness.reactor,
                                    ListenSpec(f"tcp:{taken}:interface=127.0.0.1", taken),
                                    harness.factory)
        with self.assertRaises(StartupError) as caught:
            second.privilegedStartService()
        self.assertIn("cannot listen on", caught.exception.message)
