# -*- test-case-name: tests.edges.test_config -*-
"""
Tests of the edge options of C{twist penbal}: validation (one line per mistake) and the
run-time edges they build.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.config import EdgeConfig, build_edges
from penbal.edges.gate import Edges
from penbal.options import Options
from tests.edges.certs import Authority


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class ValidationTests(SynchronousTestCase):
    """Mistakes stop start-up with one line naming the option and what it expects."""

    def assertRefused(self, args: list[str], *fragments: str) -> None:
        e = self.assertRaises(SystemExit, parse, *args)
        message = str(e.code)
        self.assertTrue(message.startswith("penbal: error: "), message)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)

    def test_defaults_off(self) -> None:
        """Without edge options nothing is on and no Edges object is built."""
        options = parse("127.0.0.1:3306", "127.0.0.1:3307")
        self.assertEqual(options.edges, EdgeConfig())
        self.assertIsNone(build_edges(options.edges, MemoryReactorClock(), MemoryReactorClock()))

    def test_bad_acl(self) -> None:
        """A malformed --acl names the value."""
        self.assertRefused(["--acl", "1 permit nowhere", "3306", "127.0.0.1"], "'nowhere'")

    def test_client_acl_range(self) -> None:
        """--client-acl is 0 to 9."""
        self.assertRefused(["--client-acl", "12", "3306", "127.0.0.1"], "--client-acl")

    def test_send_proxy_version(self) -> None:
        """--send-proxy is v1 or v2."""
        self.assertRefused(["--send-proxy", "v3", "3306", "127.0.0.1"], "v1 or v2")

    def test_tls_min_version(self) -> None:
        """Nothing older than TLS 1.2 can be asked for."""
        self.assertRefused(["--tls-min-version", "1.1", "--backend-tls", "3306", "127.0.0.1"],
                           "1.2 or 1.3")

    def test_tls_settings_need_tls(self) -> None:
        """TLS settings without any TLS are refused rather than ignored."""
        self.assertRefused(["--tls-min-version", "1.3", "3306", "127.0.0.1"],
                           "--tls-min-version")

    def test_key_without_cert(self) -> None:
        """--backend-tls-key alone is refused."""
        self.assertRefused(["--backend-tls-key", "k.pem", "3306", "127.0.0.1"],
                           "--backend-tls-cert")

    def test_missing_ca(self) -> None:
        """An unreadable CA file is named."""
        self.assertRefused(["--backend-tls-ca", "/nonexistent/ca.pem", "3306", "127.0.0.1"],
                           "/nonexistent/ca.pem")

    def test_name_for_unknown_backend(self) -> None:
        """BACKEND=NAME must name a configured backend."""
        directory = Path(self.mktemp())
        directory.mkdir()
        ca = Authority().write(directory)
        self.assertRefused(
            ["--backend-tls-ca", ca, "--backend-tls-name", "127.0.0.9:1=db.test",
             "3306", "127.0.0.1"],
            "names no backend",
        )

    def test_accept_proxy_with_tls_listen(self) -> None:
        """--accept-proxy on a TLS endpoint is refused (the header would precede TLS)."""
        self.assertRefused(
            ["--accept-proxy", "ssl:3306:privateKey=k.pem", "127.0.0.1"], "--accept-proxy"
        )

    def test_udp_refused(self) -> None:
        """TCP-only edge options with -U are refused."""
        self.assertRefused(["-U", "--max-per-client", "2", "5353", "127.0.0.1"], "TCP only")

    def test_udp_acl(self) -> None:
        """The client ACL is accepted with -U (the UDP relay checks new clients against it)."""
        options = parse("-U", "--acl", "0 deny 127.0.0.2", "5353", "127.0.0.1")
        self.assertEqual(options.edges.acls, ("0 deny 127.0.0.2",))

    def test_bad_proxy_networks(self) -> None:
        """--proxy-networks entries are addresses or networks."""
        self.assertRefused(["--accept-proxy", "--proxy-networks", "lan", "3306", "127.0.0.1"],
                           "'lan'")


class BuildTests(SynchronousTestCase):
    """Valid options become the run-time Edges."""

    def test_haproxy_prefix(self) -> None:
        """A haproxy: LISTEN endpoint means --accept-proxy on the wrapped endpoint."""
        options = parse("haproxy:tcp:3306:interface=127.0.0.1", "127.0.0.1")
        assert options.listen_spec is not None
        self.assertEqual(options.listen_spec.endpoint, "tcp:3306:interface=127.0.0.1")
        self.assertTrue(options.edges.accept_proxy)

    def test_everything(self) -> None:
        """Every option reaches the Edges object."""
        directory = Path(self.mktemp())
        directory.mkdir()
        ca = Authority().write(directory)
        options = parse(
            "--acl", "3 deny 127.0.0.2", "--client-acl", "3", "-B", "127.0.0.1:9",
            "--send-proxy", "V2", "-H", "--idle-timeout", "30", "--max-per-client", "4",
            "--accept-proxy", "--proxy-networks", "127.0.4.0/24,::1",
            "--backend-tls-ca", ca, "--backend-tls-name", "db.test", "--tls-min-version",
            "TLSv1.3", "3306", "127.0.0.1",
        )
        reactor = MemoryReactorClock()
        edges = build_edges(options.edges, reactor, reactor)
        assert isinstance(edges, Edges)
        self.assertFalse(edges.acls[3].permits("127.0.0.2"))
        self.assertEqual(edges.client_acl, 3)
        assert edges.abuse is not None and edges.proxy_networks is not None
        self.assertEqual(edges.abuse.spec.port, 9)
        self.assertEqual(edges.send_proxy, "v2")
        self.assertTrue(edges.forwarded)
        self.assertEqual((edges.idle_timeout, edges.cap.limit if edges.cap else 0), (30, 4))
        self.assertTrue(edges.proxy_networks.permits("127.0.4.3"))
        self.assertFalse(edges.proxy_networks.permits("127.0.0.1"))
        assert edges.backend_tls is not None
        self.assertEqual(edges.backend_tls.settings.min_version, "1.3")
        self.assertEqual(edges.backend_tls.settings.default_name, "db.test")
