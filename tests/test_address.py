# -*- test-case-name: tests.test_address -*-
"""
Tests of Pen's LISTEN and server-spec parsing.
"""

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from penbal import address
from penbal.address import BackendSpec, SpecError, parse_backend, parse_listen


class ParseBackendTests(SynchronousTestCase):
    """Every form of Pen's server spec, and every bad one."""

    def test_host_and_port(self) -> None:
        """HOST:PORT gives zeros for the limits."""
        self.assertEqual(parse_backend("127.10.2.3:3306", None), BackendSpec("127.10.2.3", 3306))

    def test_missing_port_means_listen_port(self) -> None:
        """A bare host takes the listen port, as in Pen."""
        self.assertEqual(parse_backend("node1", 3306), BackendSpec("node1", 3306))

    def test_all_fields(self) -> None:
        """MAXC, HARD, WEIGHT and PRIO are read in Pen's order."""
        self.assertEqual(
            parse_backend("node1:3306:10:20:3:1", None), BackendSpec("node1", 3306, 10, 20, 3, 1)
        )

    def test_empty_port_with_fields(self) -> None:
        """An empty port field also means the listen port."""
        self.assertEqual(parse_backend("node1::5", 3307), BackendSpec("node1", 3307, 5))

    def test_ipv6_in_brackets(self) -> None:
        """IPv6 hosts are written in brackets and kept without them."""
        spec = parse_backend("[::1]:3306:4", None)
        self.assertEqual(spec, BackendSpec("::1", 3306, 4))
        self.assertEqual(spec.address, "[::1]:3306")

    def test_ipv6_without_port(self) -> None:
        """A bracketed IPv6 host alone takes the listen port."""
        self.assertEqual(parse_backend("[::1]", 3306), BackendSpec("::1", 3306))

    def test_ipv6_without_brackets_refused(self) -> None:
        """An IPv6 address without brackets is refused with the bracketed form, never read as
        a host name with a port and limits (fe80::1 used to be host 'fe80', MAXC 1)."""
        for text in ("fe80::1", "::1", "::1:3306", "fe80::1:3306:10"):
            self.assertRejected(text, "IPv6 address", "brackets", "[::1]:3306")

    def test_empty_fields_still_mean_defaults(self) -> None:
        """A host name that cannot be IPv6 keeps Pen's empty-port form; one that reads as
        IPv6 too ('db::5') is refused as ambiguous, and works with its port given."""
        self.assertEqual(parse_backend("node1::5", 3307), BackendSpec("node1", 3307, 5))
        self.assertRejected("db::5:6", "reads as an IPv6 address", "give the port")
        self.assertEqual(parse_backend("db:3307:5:6", None), BackendSpec("db", 3307, 5, 6))

    def test_format_round_trips(self) -> None:
        """format() gives a spec that parses back to the same value."""
        spec = BackendSpec("::1", 3306, 1, 2, 3, 4)
        self.assertEqual(parse_backend(spec.format(), None), spec)

    def assertRejected(self, text: str, *fragments: str) -> None:
        """C{text} is refused with a message naming the value and the form."""
        with self.assertRaises(SpecError) as caught:
            parse_backend(text, 3306)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)

    def test_bad_port(self) -> None:
        """Ports outside 1-65535 or not numbers are refused."""
        self.assertRejected("node1:0", "'0'", "1-65535")
        self.assertRejected("node1:70000", "'70000'")
        self.assertRejected("node1:abc", "'abc'")

    def test_bad_limits(self) -> None:
        """MAXC/HARD/WEIGHT/PRIO must be whole numbers."""
        self.assertRejected("node1:3306:x", "MAXC", "'x'")
        self.assertRejected("node1:3306:1:-2", "HARD")
        self.assertRejected("node1:3306:1:2:w", "WEIGHT")
        self.assertRejected("node1:3306:1:2:3:p", "PRIO")

    def test_too_many_fields(self) -> None:
        """Seven fields is one too many."""
        self.assertRejected("node1:1:2:3:4:5:6", "too many fields")

    def test_bad_hosts(self) -> None:
        """Empty hosts, bad names and unbracketed junk are refused."""
        self.assertRejected("", "empty backend")
        self.assertRejected(":3306", "missing host")
        self.assertRejected("bad host:3306", "'bad host'")
        self.assertRejected("[::1:3306", "unclosed")
        self.assertRejected("[zz]:3306", "not an IPv6")

    def test_no_port_without_listen_port(self) -> None:
        """A bare host with a unix-socket LISTEN has no port to borrow."""
        with self.assertRaises(SpecError):
            parse_backend("node1", None)


class ParseListenTests(SynchronousTestCase):
    """Pen's [HOST:]PORT and Twisted endpoint strings."""

    def test_port_only(self) -> None:
        """A port alone listens on all IPv4 interfaces, as Pen does."""
        spec = parse_listen("3306")
        self.assertEqual((spec.endpoint, spec.port), ("tcp:3306", 3306))

    def test_host_port(self) -> None:
        """HOST:PORT becomes an interface-bound tcp endpoint; localhost is loopback."""
        self.assertEqual(parse_listen("127.0.0.1:3306").endpoint, "tcp:3306:interface=127.0.0.1")
        self.assertEqual(parse_listen("localhost:3306").endpoint, "tcp:3306:interface=127.0.0.1")

    def test_ipv6(self) -> None:
        """[v6]:PORT becomes a tcp6 endpoint with escaped colons."""
        self.assertEqual(parse_listen("[::1]:3306").endpoint, r"tcp6:3306:interface=\:\:1")

    def test_tls_directory_port(self) -> None:
        """tls:DIR takes its port from port= (443 by default, as Twisted): the backends'
        default port, so a backend without a port works behind it."""
        self.assertEqual(parse_listen("tls:/etc/penbal/certs:port=8443").port, 8443)
        self.assertEqual(parse_listen("tls:/etc/penbal/certs").port, 443)
        self.assertEqual(parse_listen(r"tls:/certs\:2:port=9443").port, 9443)

    def test_plugin_endpoints_pass_through(self) -> None:
        """Any installed server endpoint plugin is a LISTEN (txtorcon's onion:, say)."""
        self.patch(address, "_plugin_prefixes", frozenset({"onion"}))
        self.assertEqual(parse_listen("onion:80:hiddenServiceDir=/x").endpoint,
                         "onion:80:hiddenServiceDir=/x")

    def test_installed_plugins_found(self) -> None:
        """Twisted's own plugin endpoints (systemd:, tcp6:, stdio:) are found by the lookup."""
        self.patch(address, "_plugin_prefixes", None)
        self.assertLessEqual({"systemd", "tcp6", "stdio"}, address.plugin_prefixes())

    def test_endpoint_strings_pass_through(self) -> None:
        """Twisted endpoint strings are kept, and their port is the backends' default."""
        for text, port in [
            ("tcp:3306:interface=127.0.0.1", 3306),
            ("tcp6:port=3307", 3307),
            ("unix:/tmp/x.sock", None),
            ("ssl:3308:privateKey=k.pem", 3308),
            ("systemd:domain=INET:index=0", None),
        ]:
            spec = parse_listen(text)
            self.assertEqual((spec.endpoint, spec.port), (text, port))

    def test_unix_path(self) -> None:
        """A path, as Pen allows, becomes a unix endpoint."""
        self.assertEqual(parse_listen("/run/pen.sock").endpoint, "unix:/run/pen.sock")

    def test_bad_listen(self) -> None:
        """Bad ports and host names are refused in one line."""
        for text in ["0", "99999", "host:", "a:b:c", "example.com:3306", "127.12.3.4:x"]:
            with self.assertRaises(SpecError, msg=text) as caught:
                parse_listen(text)
            self.assertNotIn("\n", str(caught.exception))


class TCPListenTests(SynchronousTestCase):
    """Plain tcp:/tcp6: endpoint strings, read for penbal's own listening port."""

    def test_read_as_twisted_reads_them(self) -> None:
        """Port, interface and backlog are Twisted's own reading of the string (compared
        with the endpoint Twisted builds from it), defaults included."""
        from twisted.internet.endpoints import serverFromString
        from twisted.internet.testing import MemoryReactor

        for text in ["tcp:3306", "tcp:3306:interface=127.0.0.1", "tcp:0:127.0.0.2:7",
                     "tcp:port=80:backlog=9", r"tcp6:3306:interface=\:\:1", "tcp6:81",
                     "tcp6:82:5:fe80\\:\\:1%lo", "tcp:interface=127.0.0.1:port=83"]:
            ours = address.tcp_listen(text)
            twisted: Any = serverFromString(MemoryReactor(), text)
            self.assertEqual(ours, address.TCPListen(twisted._port, twisted._interface,
                                                     twisted._backlog), text)

    def test_pen_listen_addresses(self) -> None:
        """Pen's [HOST:]PORT forms are plain TCP addresses too."""
        self.assertEqual(address.tcp_listen(parse_listen("3306").endpoint),
                         address.TCPListen(3306))
        self.assertEqual(address.tcp_listen(parse_listen("[::1]:3306").endpoint),
                         address.TCPListen(3306, "::1"))

    def test_other_endpoints_are_not(self) -> None:
        """Other kinds, and tcp strings with fields this does not read, are left to
        Twisted."""
        for text in ["unix:/tmp/x.sock", "ssl:3308:privateKey=k.pem", "systemd:domain=INET:index=0",
                     "haproxy:tcp:3306", "tls:/certs:port=9", "tcp:80:reuse=1", "tcp:x",
                     "tcp:99999", "tcp:80:port=81", "tcp:80:lo:5:extra", "tcp:80:backlog=-1",
                     "TCP:80", "tcp"]:
            self.assertIsNone(address.tcp_listen(text), text)
