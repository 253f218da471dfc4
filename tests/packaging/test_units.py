# -*- test-case-name: tests.packaging.test_units -*-
"""
Tests of the systemd units in packaging/systemd: they verify, and hold the hardening and
the socket activation the docs promise.
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.process import BIN
from tests.packaging.units import SERVICE, SOCKET, settings, verify


class VerifyTests(SynchronousTestCase):
    """systemd-analyze verify, which needs no systemd running (only its binary)."""

    def test_units_verify(self) -> None:
        """An instance of each unit verifies, ExecStart pointing at this checkout's penbal."""
        done = verify("3306", penbal=str(BIN / "penbal"))
        self.assertEqual((done.returncode, done.stderr), (0, ""))

    def test_verify_catches_a_missing_command(self) -> None:
        """The check can fail: a service whose command does not exist does not verify."""
        done = verify("3306", penbal="/nonexistent/penbal")
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("/nonexistent/penbal", done.stderr)

    def test_verify_catches_a_bad_setting(self) -> None:
        """... and a setting systemd cannot parse is said on stderr (test_units_verify wants
        it empty)."""
        broken = Path(self.mktemp())
        broken.write_text(SERVICE.read_text().replace("LimitNOFILE=65536", "LimitNOFILE=lots"))
        done = verify("3306", penbal=str(BIN / "penbal"), service=broken)
        self.assertIn("Failed to parse resource value, ignoring: lots", done.stderr)


class ContentTests(SynchronousTestCase):
    """What the service promises, read from the file."""

    def setUp(self) -> None:
        self.service = settings(SERVICE)
        self.socket = settings(SOCKET)

    def test_hardening(self) -> None:
        """A dedicated user, no new privileges, a read-only system, a private /tmp, and only
        the capability to bind low ports."""
        for key, value in (("User", "penbal"), ("Group", "penbal"), ("NoNewPrivileges", "yes"),
                           ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                           ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
                           ("AmbientCapabilities", "CAP_NET_BIND_SERVICE")):
            self.assertEqual(self.service[f"Service.{key}"], [value], key)

    def test_file_limit_sized_for_max_connections(self) -> None:
        """Two descriptors per connection: the limit covers -x well past its default (500)."""
        (limit,) = self.service["Service.LimitNOFILE"]
        self.assertGreaterEqual(int(limit), 2 * 30000)

    def test_reload_is_sighup(self) -> None:
        """systemctl reload sends SIGHUP (reopen the access log, re-read -F)."""
        self.assertEqual(self.service["Service.ExecReload"], ["/bin/kill -HUP $MAINPID"])

    def test_foreground_with_instance_arguments(self) -> None:
        """penbal runs in the foreground with the instance's arguments, by default its config
        file and the socket systemd passes."""
        (start,) = self.service["Service.ExecStart"]
        self.assertTrue(start.startswith("/usr/bin/penbal -f "), start)
        self.assertTrue(start.endswith("$PENBAL_ARGS"), start)
        self.assertEqual(self.service["Service.EnvironmentFile"], ["-/etc/default/penbal-%i"])
        self.assertEqual(self.service["Service.Environment"],
                         ['"PENBAL_ARGS=-F /etc/penbal/%i.conf systemd:domain=INET:index=0"'])

    def test_socket_activation(self) -> None:
        """The socket unit holds an IPv4 TCP socket (the service's domain=INET) for the
        service of the same instance."""
        self.assertEqual(self.socket["Socket.ListenStream"], ["127.0.0.1:%i"])
        self.assertEqual(self.socket["Socket.Service"], ["penbal@%i.service"])
