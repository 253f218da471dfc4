# -*- test-case-name: tests.integration.test_listen_tls -*-
"""
TLS termination through a real penbal: --tls-min-version reaches an ssl: LISTEN endpoint.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import PenbalProcess, free_port
from tests.edges.certs import Authority


class ListenTLSTests(SynchronousTestCase):
    """An ssl: LISTEN with --tls-min-version 1.3."""

    def setUp(self) -> None:
        work = Path(tempfile.mkdtemp())
        self.ca = Authority()
        self.ca_file = self.ca.write(work)
        leaf = self.ca.issue(["127.0.0.1"]).write(work, "server")
        backend = NameBackend("tls-backend")
        self.addCleanup(backend.stop)
        self.port = free_port()
        listen = (f"ssl:{self.port}:interface=127.0.0.1"
                  f":privateKey={leaf.key_file}:certKey={leaf.cert_file}")
        proc = PenbalProcess(["--tls-min-version", "1.3", listen, backend.address],
                             listen_port=self.port)
        self.addCleanup(proc.stop)

    def handshake(self, version: ssl.TLSVersion) -> bytes:
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = context.maximum_version = version
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.recv(100)

    def test_tls13_client_relayed(self) -> None:
        """A TLS 1.3 client is verified against the test CA and relayed to the backend."""
        self.assertEqual(self.handshake(ssl.TLSVersion.TLSv1_3), b"tls-backend\n")

    def test_tls12_client_refused(self) -> None:
        """A TLS 1.2 client is refused by the handshake."""
        with self.assertRaises(ssl.SSLError):
            self.handshake(ssl.TLSVersion.TLSv1_2)
