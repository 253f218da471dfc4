# -*- test-case-name: tests.edges.test_tls -*-
"""
Tests of backend TLS settings: files, names, versions, and what a verification error says.
(Real handshakes against good and bad certificates are in tests.integration.test_edges_tls.)
"""

from __future__ import annotations

from pathlib import Path

from OpenSSL import SSL
from service_identity.hazmat import DNS_ID, IPAddress_ID
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.edges.tls import (
    BackendTLS,
    BackendTLSSettings,
    TLSConfigError,
    VerifyingCreator,
    certificate_options,
    explain_x509,
    load_client_certificate,
    parse_tls_version,
    read_certificates,
    service_id,
)
from tests.edges.certs import Authority


class FilesTests(SynchronousTestCase):
    """Certificate and key files."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.ca = Authority()

    def test_bundle(self) -> None:
        """A CA file may hold several certificates."""
        path = self.dir / "bundle.pem"
        path.write_bytes(self.ca.cert_pem + Authority("second").cert_pem)
        self.assertEqual(len(read_certificates(str(path))), 2)

    def test_no_pem(self) -> None:
        """A file with no certificate in it is refused by name."""
        path = self.dir / "empty.pem"
        path.write_bytes(b"nothing here")
        e = self.assertRaises(TLSConfigError, read_certificates, str(path))
        self.assertIn("empty.pem", str(e))

    def test_key_mismatch(self) -> None:
        """A client certificate with someone else's key is refused."""
        one = self.ca.issue(["a.test"], client=True).write(self.dir, "one")
        two = self.ca.issue(["b.test"], client=True).write(self.dir, "two")
        self.assertRaises(TLSConfigError, load_client_certificate, one.cert_file, two.key_file)

    def test_key_in_cert_file(self) -> None:
        """The key may sit in the certificate file."""
        issued = self.ca.issue(["a.test"], client=True)
        path = self.dir / "both.pem"
        path.write_bytes(issued.cert_pem + issued.key_pem)
        self.assertIsNotNone(load_client_certificate(str(path), None))

    def test_bad_ciphers(self) -> None:
        """A cipher list that selects nothing is refused."""
        ca_file = self.ca.write(self.dir)
        self.assertRaises(
            TLSConfigError, certificate_options,
            BackendTLSSettings(ca_file=ca_file, ciphers="NOTHING-AT-ALL"),
        )

    def test_verification_required(self) -> None:
        """The client context always verifies the peer."""
        ca_file = self.ca.write(self.dir)
        context = certificate_options(BackendTLSSettings(ca_file=ca_file)).getContext()
        self.assertTrue(context.get_verify_mode() & SSL.VERIFY_PEER)


class NameTests(SynchronousTestCase):
    """Which name a backend's certificate must carry."""

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        self.ca_file = Authority().write(directory)
        self.backend = Backend(BackendSpec("127.0.0.1", 3306))

    def tls(self, **settings: object) -> BackendTLS:
        return BackendTLS(BackendTLSSettings(ca_file=self.ca_file, **settings), Clock())  # type: ignore[arg-type]

    def test_default_is_host(self) -> None:
        """Without a name, the backend's host (here an IP address) is checked."""
        self.assertEqual(self.tls().server_name(self.backend), "127.0.0.1")

    def test_one_for_all(self) -> None:
        """One name for every backend."""
        self.assertEqual(self.tls(default_name="db.test").server_name(self.backend), "db.test")

    def test_per_backend_wins(self) -> None:
        """A per-backend name wins over the name for all."""
        tls = self.tls(default_name="db.test", names={"127.0.0.1:3306": "one.test"})
        self.assertEqual(tls.server_name(self.backend), "one.test")

    def test_creator_cached(self) -> None:
        """One creator per name."""
        tls = self.tls()
        self.assertIs(tls.creator("a.test"), tls.creator("a.test"))

    def test_sni_only_for_dns_names(self) -> None:
        """SNI is sent for DNS names, not IP addresses."""
        context = certificate_options(BackendTLSSettings(ca_file=self.ca_file)).getContext()

        class Wrapper:
            wrappedProtocol = None

        named = VerifyingCreator(context, "db.test").clientConnectionForTLS(Wrapper())
        by_ip = VerifyingCreator(context, "127.0.0.1").clientConnectionForTLS(Wrapper())
        self.assertEqual(named.get_servername(), b"db.test")
        self.assertIsNone(by_ip.get_servername())


class WordsTests(SynchronousTestCase):
    """Versions, identities and errors in words."""

    def test_versions(self) -> None:
        """1.2 and 1.3 in several spellings; older ones refused."""
        self.assertEqual(parse_tls_version("TLSv1.3"), "1.3")
        self.assertEqual(parse_tls_version("1.2"), "1.2")
        self.assertRaises(TLSConfigError, parse_tls_version, "1.0")

    def test_service_id(self) -> None:
        """IP literals are checked as IP addresses, others as DNS names."""
        self.assertIsInstance(service_id("::1"), IPAddress_ID)
        self.assertIsInstance(service_id("127.0.0.1"), IPAddress_ID)
        self.assertIsInstance(service_id("db.test"), DNS_ID)

    def test_explain(self) -> None:
        """OpenSSL's codes for the usual mistakes are spelled out."""
        self.assertEqual(explain_x509(10, 0), "certificate has expired")
        self.assertIn("trusted CA", explain_x509(20, 0))
        self.assertIn("depth 1", explain_x509(10, 1))
        self.assertIn("99", explain_x509(99, 0))
