# -*- test-case-name: tests.edges.test_tlsserver -*-
"""
Tests of the TLS termination settings (real handshakes: tests.integration.test_edges_tls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.tls import TLSConfigError
from penbal.edges.tlsserver import (
    CertificateDirectory,
    ListenTLSSettings,
    SNIDirectoryCreator,
    endpoint_context,
    is_tls_endpoint,
    listen_endpoint,
    tighten,
)
from tests.edges.certs import Authority, Issued


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
        self.assertTrue(ListenTLSSettings(terminates=True).active)
        self.assertFalse(ListenTLSSettings(terminates=True).tightens)
        listen_endpoint(MemoryReactorClock(), "tcp:0", ListenTLSSettings())


def _served(context: SSL.Context | None) -> bytes:
    """The DER of the certificate a connection on C{context} would present."""
    assert context is not None
    certificate = SSL.Connection(context, None).get_certificate()
    assert certificate is not None
    return certificate.to_cryptography().public_bytes(Encoding.DER)


def _der(issued: Issued) -> bytes:
    return x509.load_pem_x509_certificate(issued.cert_pem).public_bytes(Encoding.DER)


class CertificateDirectoryTests(SynchronousTestCase):
    """The tls:DIR lookup: files read again when they change, names picked up when added."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.ca = Authority()

    def put(self, stem: str, *names: str, expired: bool = False) -> Issued:
        issued = self.ca.issue(list(names), expired=expired)
        (self.dir / f"{stem}.pem").write_bytes(issued.cert_pem + issued.key_pem)
        return issued

    def directory(self, settings: ListenTLSSettings | None = None) -> CertificateDirectory:
        return CertificateDirectory(str(self.dir), settings or ListenTLSSettings())

    def test_names(self) -> None:
        """Each certificate is served for its DNS names; another name gets the first one."""
        front = self.put("a", "front.test")
        other = self.put("b", "other.test", "alias.test")
        certs = self.directory()
        self.assertEqual(certs.names, ["alias.test", "front.test", "other.test"])
        self.assertEqual(_served(certs.context_for(b"other.test")), _der(other))
        self.assertEqual(_served(certs.context_for(b"ALIAS.test.")), _der(other))
        self.assertEqual(_served(certs.context_for(b"front.test")), _der(front))
        self.assertEqual(_served(certs.context_for(None)), _der(front))
        self.assertEqual(_served(certs.context_for(b"nobody.test")), _der(front))

    def test_added_name(self) -> None:
        """A certificate written after start-up is served at the next lookup."""
        self.put("a", "front.test")
        certs = self.directory()
        added = self.put("n", "new.test")
        self.assertEqual(_served(certs.context_for(b"new.test")), _der(added))
        self.assertIn("new.test", certs.names)

    def test_renewed(self) -> None:
        """A certificate replaced under the same file name is read again."""
        old = self.put("a", "front.test")
        certs = self.directory()
        self.assertEqual(_served(certs.context_for(b"front.test")), _der(old))
        new = self.put("a", "front.test")
        self.assertNotEqual(_der(new), _der(old))
        self.assertEqual(_served(certs.context_for(b"front.test")), _der(new))

    def test_unchanged_not_reread(self) -> None:
        """Lookups while nothing changed reuse the contexts (the files are not parsed)."""
        self.put("a", "front.test")
        certs = self.directory()
        first = certs.context_for(b"front.test")
        self.assertIs(certs.context_for(b"front.test"), first)

    def test_removed(self) -> None:
        """A certificate whose file is gone is no longer served for its name."""
        front = self.put("a", "front.test")
        self.put("b", "other.test")
        certs = self.directory()
        (self.dir / "b.pem").unlink()
        self.assertEqual(certs.names, ["front.test", "other.test"])  # not looked at yet
        self.assertEqual(_served(certs.context_for(b"other.test")), _der(front))
        self.assertEqual(certs.names, ["front.test"])

    def test_key_in_own_file(self) -> None:
        """A key in a separate .pem file is paired with its certificate."""
        issued = self.ca.issue(["split.test"])
        (self.dir / "split.crt.pem").write_bytes(issued.cert_pem)
        (self.dir / "split.key.pem").write_bytes(issued.key_pem)
        self.assertEqual(_served(self.directory().context_for(b"split.test")), _der(issued))

    def test_wildcard(self) -> None:
        """A *.domain certificate serves names one label below it."""
        wild = self.put("w", "*.example.test")
        self.put("a", "front.test")
        certs = self.directory()
        self.assertEqual(_served(certs.context_for(b"db.example.test")), _der(wild))

    def test_valid_preferred(self) -> None:
        """Of two certificates for one name, the one valid now is served."""
        valid = self.put("b-new", "front.test")
        self.put("a-old", "front.test", expired=True)
        self.assertEqual(_served(self.directory().context_for(b"front.test")), _der(valid))

    def test_bad_file_at_start(self) -> None:
        """An unparsable file stops start-up, naming it."""
        (self.dir / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n"
                                              b"-----END CERTIFICATE-----\n")
        e = self.assertRaises(TLSConfigError, self.directory)
        self.assertIn("broken.pem", str(e))

    def test_bad_file_later_keeps_last_good(self) -> None:
        """A file broken at run time (being rewritten) keeps serving what it held."""
        front = self.put("a", "front.test")
        certs = self.directory()
        (self.dir / "a.pem").write_bytes(front.cert_pem[:100])
        self.assertEqual(_served(certs.context_for(b"front.test")), _der(front))
        renewed = self.put("a", "front.test")
        self.assertEqual(_served(certs.context_for(b"front.test")), _der(renewed))

    def test_not_a_directory(self) -> None:
        """A missing directory is refused at start-up."""
        e = self.assertRaises(TLSConfigError, CertificateDirectory,
                              str(self.dir / "missing"), ListenTLSSettings())
        self.assertIn("missing", str(e))

    def test_settings_on_every_context(self) -> None:
        """Every name, also one added later, refuses TLS 1.2 with --tls-min-version 1.3."""
        self.put("a", "front.test")
        settings = ListenTLSSettings(min_version="1.3")
        creator = SNIDirectoryCreator(self.directory(settings), settings)
        self.put("b", "other.test")
        for name in (b"front.test", b"other.test"):
            self.assertEqual(handshake(creator, name, SSL.TLS1_3_VERSION), "TLSv1.3")
            self.assertTrue(handshake(creator, name, SSL.TLS1_2_VERSION).startswith("refused"))

    def test_ciphers_on_every_context(self) -> None:
        """Every name, also one added later, refuses a TLS 1.2 cipher outside --tls-ciphers."""
        settings = ListenTLSSettings(ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
        self.put("a", "front.test")
        self.put("b", "other.test")
        creator = SNIDirectoryCreator(self.directory(settings), settings)
        self.put("c", "third.test")
        for name in (b"front.test", b"other.test", b"third.test"):
            self.assertEqual(
                handshake(creator, name, SSL.TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384"),
                "TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384",
            )
            refused = handshake(creator, name, SSL.TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256")
            self.assertTrue(refused.startswith("refused"), (name, refused))

    def test_no_certificate_fails_handshake(self) -> None:
        """An empty directory serves nobody: the handshake fails instead of going on bare."""
        creator = SNIDirectoryCreator(self.directory(), ListenTLSSettings())
        self.assertTrue(handshake(creator, b"front.test", SSL.TLS1_3_VERSION)
                        .startswith("refused"))
        self.put("a", "front.test")
        self.assertEqual(handshake(creator, b"front.test", SSL.TLS1_3_VERSION), "TLSv1.3")


def handshake(creator: SNIDirectoryCreator, name: bytes, maximum: int,
              ciphers: str | None = None) -> str:
    """
    A handshake in memory (no verification by the client: the server side is under test);
    the version and TLS 1.2 cipher, or C{refused: ...}.
    """
    client_context = SSL.Context(SSL.TLS_METHOD)
    client_context.set_max_proto_version(maximum)
    if ciphers is not None:
        client_context.set_cipher_list(ciphers.encode())
    client = SSL.Connection(client_context, None)
    client.set_tlsext_host_name(name)
    client.set_connect_state()
    server = creator.serverConnectionForTLS(None)
    server.set_accept_state()
    done = {"client": False, "server": False}
    ends = {"client": client, "server": server}
    try:
        for _ in range(20):
            for side, connection in ends.items():
                if not done[side]:
                    try:
                        connection.do_handshake()
                        done[side] = True
                    except SSL.WantReadError:
                        pass
            for source, target in ((client, server), (server, client)):
                try:
                    target.bio_write(source.bio_read(65536))
                except SSL.WantReadError:
                    pass
            if all(done.values()):
                version = client.get_protocol_version_name()
                if maximum == SSL.TLS1_3_VERSION:
                    return version
                return f"{version} {client.get_cipher_name()}"
    except SSL.Error as e:
        return f"refused: {e}"
    return "refused: no handshake"


class TLSDirectoryEndpointTests(SynchronousTestCase):
    """Parsing tls:DIR descriptions into penbal's own endpoint."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        issued = Authority().issue(["front.test"])
        (self.dir / "a.pem").write_bytes(issued.cert_pem + issued.key_pem)

    def test_own_creator(self) -> None:
        """tls: endpoints get penbal's SNI creator, with the port and interface asked for."""
        endpoint: Any = listen_endpoint(MemoryReactorClock(),
                                        f"tls:{self.dir}:port=8443:interface=127.0.0.1",
                                        ListenTLSSettings(terminates=True))
        self.assertIsInstance(endpoint.connectionCreator, SNIDirectoryCreator)
        self.assertEqual(endpoint.endpoint._port, 8443)
        self.assertEqual(endpoint.endpoint._interface, "127.0.0.1")
        self.assertIsInstance(endpoint_context(endpoint), SSL.Context)

    def test_defaults(self) -> None:
        """Twisted's defaults: port 443 on every address."""
        endpoint: Any = listen_endpoint(MemoryReactorClock(), f"tls:{self.dir}",
                                        ListenTLSSettings(terminates=True))
        self.assertEqual((endpoint.endpoint._port, endpoint.endpoint._interface), (443, "::"))

    def test_bad_descriptions(self) -> None:
        """Unknown parameters, bad numbers and a missing directory are refused."""
        for description in (f"tls:{self.dir}:port=x", f"tls:{self.dir}:colour=red", "tls:",
                            f"tls:{self.dir}/nope:port=1"):
            self.assertRaises(TLSConfigError, listen_endpoint, MemoryReactorClock(),
                              description, ListenTLSSettings(terminates=True))

    def test_bad_ciphers(self) -> None:
        """A cipher list naming nothing is refused at start-up on a tls: endpoint too."""
        self.assertRaises(TLSConfigError, listen_endpoint, MemoryReactorClock(),
                          f"tls:{self.dir}", ListenTLSSettings(ciphers="NOPE"))
