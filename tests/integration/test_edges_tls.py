# -*- test-case-name: tests.integration.test_edges_tls -*-
"""
TLS with a throwaway CA made in the test: backends with a good certificate, a wrong name, an
expired one and one from an unknown CA, behind a real penbal; TLS termination on tls:/ssl:.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from penbal.edges.tls import TLSConfigError
from penbal.edges.tlsserver import ListenTLSSettings, listen_endpoint
from penbal.testing.backends import Backend
from penbal.testing.process import PenbalProcess, free_port, run_penbal, wait_for
from tests.edges.certs import Authority, Issued, certificate_directory


class TLSBackend(Backend):
    """A loopback TLS server that sends its name, then echoes; handshake errors are counted."""

    def __init__(self, name: str, issued: Issued, client_ca: str | None = None) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(issued.cert_file, issued.key_file)
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.handshakes_failed = 0
        self.client_subjects: list[str] = []
        super().__init__(name)

    def handle(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        try:
            tls = self.context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.handshakes_failed += 1
            return
        peer = tls.getpeercert()
        if peer:
            with self.lock:
                self.client_subjects.append(str(peer.get("subject")))
        tls.sendall(self.name.encode() + b"\n")
        while data := tls.recv(65536):
            tls.sendall(data)
        tls.close()


class SayAndClose(Backend):
    """Sends its name and closes: the backend ends first."""

    def handle(self, sock: socket.socket) -> None:
        sock.sendall(self.name.encode() + b"\n")


def ask(port: int, payload: bytes = b"ping\n", host: str = "127.0.0.1") -> bytes:
    """Connect through penbal, send a line, return everything up to the echoed line."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(payload)
        data = b""
        while not data.endswith(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


class BackendTLSTests(SynchronousTestCase):
    """--backend-tls: verified connections, failover on every kind of bad certificate."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.ca = Authority()
        self.ca_file = self.ca.write(self.dir)

    def backend(self, name: str, issued: Issued, client_ca: str | None = None) -> TLSBackend:
        issued.write(self.dir, name)
        backend = TLSBackend(name, issued, client_ca)
        self.addCleanup(backend.stop)
        return backend

    def penbal(self, backends: list[Backend], *options: str) -> tuple[int, PenbalProcess]:
        port = free_port()
        proc = PenbalProcess(
            ["-r", *options, f"127.0.0.1:{port}", *(b.address for b in backends)],
            listen_port=port, access_log=True,
        )
        self.addCleanup(proc.stop)
        return port, proc

    def test_bad_certificates_fail_over(self) -> None:
        """Wrong name, expired and unknown-CA backends are blacklisted with the reason."""
        stranger = Authority("some other CA")
        wrong = self.backend("wrong", self.ca.issue(["db.other.test"]))
        expired = self.backend("expired", self.ca.issue(["db.test"], expired=True))
        unknown = self.backend("unknown", stranger.issue(["db.test"]))
        good = self.backend("good", self.ca.issue(["db.test"]))
        port, proc = self.penbal(
            [wrong, expired, unknown, good],
            "--backend-tls-ca", self.ca_file, "--backend-tls-name", "db.test",
        )
        for i in range(6):
            self.assertEqual(ask(port, f"hello {i}\n".encode()), f"good\nhello {i}\n".encode())
        wait_for(lambda: "not signed by a trusted CA" in proc.log(), 10, "the unknown-CA reason")
        log = proc.log()
        self.assertIn("certificate does not match 'db.test'", log)
        self.assertIn("certificate has expired", log)
        self.assertIn("blacklisted", log)
        self.assertGreaterEqual(good.connections, 6)  # and penbal's start-up probe, maybe
        for bad in (wrong, expired, unknown):
            # Tried once (twice if the start-up probe's attempt was still in its handshake).
            self.assertLessEqual(bad.connections, 2)

    def test_closing_is_clean(self) -> None:
        """Connections over TLS to a backend end without an error in the log, whichever side
        ends first, a client that half-closes included (it still gets the whole reply)."""
        good = self.backend("good", self.ca.issue(["db.test"]))
        port, proc = self.penbal([good], "--backend-tls-ca", self.ca_file,
                                 "--backend-tls-name", "db.test")
        for i in range(3):
            self.assertEqual(ask(port, f"hello {i}\n".encode()), f"good\nhello {i}\n".encode())
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"half\n")
                s.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                self.assertEqual(data, b"good\nhalf\n")
        wait_for(lambda: len(proc.access_records()) >= 6, 10,
                 "six connection records")
        self.assertNotIn("Unhandled Error", proc.log())

    def test_ip_address_identity(self) -> None:
        """Without --backend-tls-name the backend's IP address must be in the certificate."""
        by_ip = self.backend("byip", self.ca.issue(["127.0.0.1"]))
        port, _ = self.penbal([by_ip], "--backend-tls-ca", self.ca_file)
        self.assertEqual(ask(port), b"byip\nping\n")

    def test_name_per_backend(self) -> None:
        """BACKEND=NAME sets the expected name of one backend."""
        one = self.backend("one", self.ca.issue(["one.test"]))
        two = self.backend("two", self.ca.issue(["two.test"]))
        port, _ = self.penbal(
            [one, two], "--backend-tls-ca", self.ca_file,
            "--backend-tls-name", f"{one.address}=one.test",
            "--backend-tls-name", f"{two.address}=two.test",
        )
        names = {ask(port).split(b"\n")[0] for _ in range(4)}
        self.assertEqual(names, {b"one", b"two"})

    def test_client_certificate(self) -> None:
        """A backend that requires a client certificate gets penbal's."""
        client = self.ca.issue(["penbal.test"], client=True).write(self.dir, "client")
        strict = self.backend("strict", self.ca.issue(["db.test"]), client_ca=self.ca_file)
        port, _ = self.penbal(
            [strict], "--backend-tls-ca", self.ca_file, "--backend-tls-name", "db.test",
            "--backend-tls-cert", client.cert_file, "--backend-tls-key", client.key_file,
        )
        self.assertEqual(ask(port), b"strict\nping\n")
        self.assertIn("penbal.test", strict.client_subjects[0])

    def test_all_bad_closes_client(self) -> None:
        """With only a bad backend the client is closed; no byte reaches the backend."""
        wrong = self.backend("wrong", self.ca.issue(["db.other.test"]))
        port, _ = self.penbal([wrong], "--backend-tls-ca", self.ca_file,
                              "--backend-tls-name", "db.test")
        self.assertEqual(ask(port), b"")
        self.assertGreaterEqual(wrong.handshakes_failed, 1)
        self.assertEqual(wrong.client_subjects, [])

    def tls12_backend(self, name: str, ciphers: str | None = None) -> TLSBackend:
        """A backend that speaks TLS 1.2 at most (and only C{ciphers}, if given)."""
        backend = self.backend(name, self.ca.issue(["db.test"]))
        backend.context.maximum_version = ssl.TLSVersion.TLSv1_2
        if ciphers is not None:
            backend.context.set_ciphers(ciphers)
        return backend

    def test_min_version_refuses_tls12_backend(self) -> None:
        """
        With --tls-min-version 1.3 a TLS 1.2-only backend fails its handshake: it is
        blacklisted with the reason and the client fails over (without the option the same
        backend is used, so it is the option that refuses it).
        """
        old = self.tls12_backend("old")
        port, _ = self.penbal([old], "--backend-tls-ca", self.ca_file,
                              "--backend-tls-name", "db.test")
        self.assertEqual(ask(port), b"old\nping\n")
        new = self.backend("new", self.ca.issue(["db.test"]))
        port, proc = self.penbal([old, new], "--backend-tls-ca", self.ca_file,
                                 "--backend-tls-name", "db.test", "--tls-min-version", "1.3")
        for i in range(4):
            self.assertEqual(ask(port, b"v%d\n" % i), b"new\nv%d\n" % i)
        wait_for(lambda: "TLS handshake failed: tlsv1 alert protocol version" in proc.log(),
                 10, "the protocol-version reason")
        self.assertIn(f'"backend": "{old.address}", "why": "TLS handshake failed', proc.log())
        self.assertNotIn(f'"backend": "{new.address}", "why"', proc.log())
        self.assertIn("blacklisted", proc.log())
        self.assertGreaterEqual(old.handshakes_failed, 1)
        self.assertEqual(len(old.client_subjects), 0)

    def test_cipher_mismatch_refused(self) -> None:
        """
        A TLS 1.2 backend whose only cipher is outside --tls-ciphers fails its handshake and
        is failed over; with no backend left the client is closed, nothing relayed.
        """
        allowed, other = "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"
        odd = self.tls12_backend("odd", ciphers=other)
        fine = self.tls12_backend("fine", ciphers=allowed)
        port, proc = self.penbal([odd, fine], "--backend-tls-ca", self.ca_file,
                                 "--backend-tls-name", "db.test", "--tls-ciphers", allowed)
        for i in range(4):
            self.assertEqual(ask(port, b"c%d\n" % i), b"fine\nc%d\n" % i)
        wait_for(lambda: f'"backend": "{odd.address}", "why": "TLS handshake failed: '
                 in proc.log(), 10, "the cipher mismatch")
        self.assertIn("handshake failure", proc.log())
        self.assertGreaterEqual(odd.handshakes_failed, 1)
        port, _ = self.penbal([odd], "--backend-tls-ca", self.ca_file,
                              "--backend-tls-name", "db.test", "--tls-ciphers", allowed)
        self.assertEqual(ask(port), b"")

    def test_missing_ca_file(self) -> None:
        """A CA file that cannot be read stops start-up with one line naming it."""
        done = run_penbal(["--backend-tls-ca", "/nonexistent/ca.pem", "127.0.0.1:1",
                           "127.0.0.1:2"])
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("/nonexistent/ca.pem", done.stderr)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)


class TLSTerminationTests(SynchronousTestCase):
    """tls:DIR LISTEN endpoints, with a certificate directory and SNI."""

    def serve_directory(self) -> tuple[Path, Authority, Issued, int, ssl.SSLContext]:
        """A penbal on a tls: directory holding a certificate for front.test, in front of an
        echo backend: the directory, its CA and certificate, the port, and a client context
        that trusts the CA."""
        certs, ca, issued = certificate_directory(Path(self.mktemp()))
        backend = Backend("echo")
        self.addCleanup(backend.stop)
        port = free_port()
        proc = PenbalProcess([f"tls:{certs}:port={port}:interface=127.0.0.1", backend.address],
                             listen_port=port)
        self.addCleanup(proc.stop)
        return certs, ca, issued, port, ssl.create_default_context(cadata=ca.cert_pem.decode())

    def test_tls_directory_endpoint(self) -> None:
        """A client that verifies against the CA is served through a tls: endpoint."""
        _, _, _, port, context = self.serve_directory()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="front.test") as tls:
            tls.sendall(b"over tls\n")
            self.assertEqual(tls.recv(100), b"over tls\n")


    def test_ssl_endpoint_ends_cleanly(self) -> None:
        """An ssl: endpoint whose backend ends first, and a client that then sends its
        close_notify: the reply arrives whole and penbal logs no error (Twisted's own TLS
        raised in that order, see penbal.edges.tlsclose)."""
        directory = Path(self.mktemp())
        directory.mkdir()
        issued = Authority().issue(["front.test"])
        issued.write(directory, "front")
        backend = SayAndClose("named")
        self.addCleanup(backend.stop)
        port = free_port()
        proc = PenbalProcess(
            [f"ssl:{port}:interface=127.0.0.1:privateKey={issued.key_file}"
             f":certKey={issued.cert_file}", backend.address], listen_port=port,
            access_log=True)
        self.addCleanup(proc.stop)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                tls = context.wrap_socket(raw, server_hostname="front.test")
                data = b""
                while chunk := tls.recv(100):
                    data += chunk
                self.assertEqual(data, b"named\n")
                try:
                    tls.unwrap()  # our close_notify, after penbal's
                except (ssl.SSLError, OSError):
                    pass
        wait_for(lambda: len(proc.access_records()) >= 3, 10,
                 "three connection records")
        self.assertNotIn("Unhandled Error", proc.log())

    def test_certificates_added_and_renewed(self) -> None:
        """
        A certificate for a new name written after start-up is served, and so is a renewed
        certificate written over an existing one (penbal's own tls: lookup, per handshake).
        """
        certs, ca, first, port, context = self.serve_directory()

        def served(name: str) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    context.wrap_socket(raw, server_hostname=name) as tls:
                tls.sendall(b"ping\n")
                self.assertEqual(tls.recv(100), b"ping\n")
                certificate = tls.getpeercert(binary_form=True)
                assert certificate is not None
                return certificate

        self.assertEqual(served("front.test"), der(first))
        with self.assertRaises(ssl.SSLCertVerificationError):
            served("new.test")  # not there yet: the default certificate, for another name
        added = ca.issue(["new.test"])
        (certs / "new.pem").write_bytes(added.cert_pem + added.key_pem)
        self.assertEqual(served("new.test"), der(added))
        renewed = ca.issue(["front.test"])
        staging = certs / "front.pem.tmp"  # written aside, then renamed over (atomic)
        staging.write_bytes(renewed.cert_pem + renewed.key_pem)
        staging.rename(certs / "front.pem")
        self.assertEqual(served("front.test"), der(renewed))
        rewritten = ca.issue(["new.test"])
        (certs / "new.pem").write_bytes(rewritten.cert_pem + rewritten.key_pem)  # in place
        self.assertEqual(served("new.test"), der(rewritten))


    def test_bad_certificate_file_stops_startup(self) -> None:
        """A tls: directory with a file that does not parse stops start-up, naming it."""
        certs = Path(self.mktemp()) / "certs"
        certs.mkdir(parents=True)
        (certs / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n"
                                           b"-----END CERTIFICATE-----\n")
        done = run_penbal([f"tls:{certs}:port=1:interface=127.0.0.1", "127.0.0.1:2"])
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("broken.pem", done.stderr)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)


def der(issued: Issued) -> bytes:
    """The DER form of an issued certificate, as a client sees it."""
    return ssl.PEM_cert_to_DER_cert(issued.cert_pem.decode())


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]


class ListenSettingsTests(TestCase):
    """--tls-min-version and --tls-ciphers on ssl:/tls: endpoints (real handshakes)."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.ca = Authority()
        self.issued = self.ca.issue(["front.test"]).write(self.dir, "front")

    def listen(self, settings: ListenTLSSettings, kind: str = "ssl") -> Deferred[int]:
        if kind == "ssl":
            description = (f"ssl:0:interface=127.0.0.1:privateKey={self.issued.key_file}"
                           f":certKey={self.issued.cert_file}")
        else:
            (self.dir / "sni").mkdir()
            (self.dir / "sni" / "a.pem").write_bytes(self.issued.cert_pem + self.issued.key_pem)
            other = self.ca.issue(["other.test"])
            (self.dir / "sni" / "b.pem").write_bytes(other.cert_pem + other.key_pem)
            description = f"tls:{self.dir / 'sni'}:port=0:interface=127.0.0.1"
        endpoint = listen_endpoint(reactor, description, settings)

        async def go() -> int:
            port: IListeningPort = await endpoint.listen(Factory.forProtocol(Echo))
            self.addCleanup(port.stopListening)
            return int(port.getHost().port)  # type: ignore[attr-defined]

        return ensureDeferred(go())

    def client(self, port: int, maximum: ssl.TLSVersion, name: str = "front.test",
               ciphers: str | None = None) -> Deferred[str]:
        def run() -> str:
            context = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
            context.maximum_version = maximum
            if ciphers is not None:
                context.set_ciphers(ciphers)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                        context.wrap_socket(raw, server_hostname=name) as tls:
                    tls.sendall(b"x")
                    tls.recv(1)
                    cipher = tls.cipher()
                    assert cipher is not None
                    return f"{tls.version()} {cipher[0]}"
            except ssl.SSLError as e:
                return f"refused: {e.reason}"

        return deferToThread(run)

    async def test_min_version_ssl(self) -> None:
        """With --tls-min-version 1.3 an ssl: endpoint refuses a TLS 1.2 client."""
        port = await self.listen(ListenTLSSettings(min_version="1.3"))
        self.assertTrue((await self.client(port, ssl.TLSVersion.TLSv1_2)).startswith("refused"))
        self.assertTrue((await self.client(port, ssl.TLSVersion.TLSv1_3)).startswith("TLSv1.3"))

    async def test_min_version_tls_sni(self) -> None:
        """The minimum holds on a tls: directory endpoint, for every SNI certificate."""
        port = await self.listen(ListenTLSSettings(min_version="1.3"), kind="tls")
        for name in ("front.test", "other.test"):
            refused = await self.client(port, ssl.TLSVersion.TLSv1_2, name)
            self.assertTrue(refused.startswith("refused"), refused)
            self.assertTrue((await self.client(port, ssl.TLSVersion.TLSv1_3, name))
                            .startswith("TLSv1.3"))

    async def test_ciphers(self) -> None:
        """--tls-ciphers limits the TLS 1.2 ciphers the endpoint accepts."""
        port = await self.listen(ListenTLSSettings(ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"))
        used = await self.client(port, ssl.TLSVersion.TLSv1_2)
        self.assertEqual(used, "TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384")
        other = await self.client(port, ssl.TLSVersion.TLSv1_2,
                                  ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertTrue(other.startswith("refused"), other)

    async def test_ciphers_tls_sni(self) -> None:
        """On a tls: directory every name refuses a TLS 1.2 cipher outside --tls-ciphers."""
        allowed, other = "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256"
        port = await self.listen(ListenTLSSettings(ciphers=allowed), kind="tls")
        third = self.ca.issue(["third.test"])  # added after start-up
        (self.dir / "sni" / "c.pem").write_bytes(third.cert_pem + third.key_pem)
        for name in ("front.test", "other.test", "third.test"):
            used = await self.client(port, ssl.TLSVersion.TLSv1_2, name, ciphers=allowed)
            self.assertEqual(used, f"TLSv1.2 {allowed}")
            refused = await self.client(port, ssl.TLSVersion.TLSv1_2, name, ciphers=other)
            self.assertTrue(refused.startswith("refused"), (name, refused))

    def test_plain_endpoint_refused(self) -> None:
        """TLS settings on a plain tcp: endpoint are an error, not silently ignored."""
        self.assertRaises(TLSConfigError, listen_endpoint, reactor, "tcp:0",
                          ListenTLSSettings(min_version="1.3"))

    def test_bad_ciphers(self) -> None:
        """A cipher list that names nothing available is an error."""
        self.assertRaises(
            TLSConfigError, listen_endpoint, reactor,
            f"ssl:0:privateKey={self.issued.key_file}:certKey={self.issued.cert_file}",
            ListenTLSSettings(ciphers="NOTACIPHER"),
        )



