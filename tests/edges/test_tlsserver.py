# -*- test-case-name: tests.edges.test_tlsserver -*-
"""
Tests of the TLS termination settings (real handshakes: tests.integration.test_edges_tls).
"""

from __future__ import annotations

from pathlib import Path

from OpenSSL import SSL
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.tls import TLSConfigError
from penbal.edges.tlsserver import (
    ListenTLSSettings,
    endpoint_context,
    is_tls_endpoint,
    listen_endpoint,
    tighten,
)
from tests.edges.certs import Authority


class TightenTests(SynchronousTestCase):
    """Applying --tls-min-version and --tls-ciphers to an endpoint's context."""

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        issued = Authority().issue(["front.test"]).write(directory, "front")
        self.description = f"ssl:0:privateKey={issued.key_file}:certKey={issued.cert_file}"

    def test_is_tls(self) -> None:
        """ssl: and tls: terminate TLS; tcp: does not."""
        self.assertTrue(is_tls_endpoint("ssl:443"))
        self.assertTrue(is_tls_endpoint("tls:/etc/certs:port=443"))
        self.assertFalse(is_tls_endpoint("tcp:443"))

    def test_ssl_context_found(self) -> None:
        """The context of an ssl: endpoint is the one it will use."""
        endpoint = listen_endpoint(MemoryReactorClock(), self.description, ListenTLSSettings())
        self.assertIsInstance(endpoint_context(endpoint), SSL.Context)

    def test_unknown_endpoint(self) -> None:
        """An endpoint without a TLS context is refused."""
        self.assertRaises(TLSConfigError, endpoint_context, object())

    def test_bad_cipher_list(self) -> None:
        """A cipher list naming nothing is refused with the value."""
        endpoint = listen_endpoint(MemoryReactorClock(), self.description, ListenTLSSettings())
        e = self.assertRaises(TLSConfigError, tighten, endpoint_context(endpoint),
                              ListenTLSSettings(ciphers="NOPE"))
        self.assertIn("'NOPE'", str(e))

    def test_inactive(self) -> None:
        """No settings, nothing to do, on any endpoint."""
        self.assertFalse(ListenTLSSettings().active)
        listen_endpoint(MemoryReactorClock(), "tcp:0", ListenTLSSettings())
