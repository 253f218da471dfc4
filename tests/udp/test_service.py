# -*- test-case-name: tests.udp.test_service -*-
"""
Tests of L{penbal.udp.service}: assembly from options, start-up errors, stopping.
"""

from __future__ import annotations

import socket

from twisted.application.service import IServiceCollection
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from penbal.options import Options
from penbal.service import StartupError
from penbal.tap import makeService
from penbal.udp.relay import RESEND_COUNT
from penbal.udp.service import UDPBalancerService, raise_open_file_limit
from tests.udp.loopback import free_udp_port


def options(*args: str) -> Options:
    parsed = Options()
    parsed.parseOptions(list(args))
    return parsed


def udp_service(*args: str) -> UDPBalancerService:
    top = makeService(options(*args))
    assert IServiceCollection.providedBy(top)
    [service] = [s for s in top if isinstance(s, UDPBalancerService)]
    return service


class AssemblyTests(TestCase):
    def test_tap_builds_udp_service(self) -> None:
        """C{--udp} gives a UDP service over the same balancer settings."""
        service = udp_service("--udp", "--udp-idle", "7", "--clients", "99", "--blacklist", "3",
                              "127.0.0.1:5353", "127.0.0.2", "127.0.0.3")
        relay = service.relay
        self.assertEqual((relay.table.capacity, relay.table.idle), (99, 7.0))
        self.assertEqual(relay.balancer.settings.blacklist, 3.0)
        self.assertEqual([b.address for b in relay.balancer.pool],
                         ["127.0.0.2:5353", "127.0.0.3:5353"])
        self.assertIsNone(service.probe)

    def test_resend_count(self) -> None:
        """The relay sends again at most C{RESEND_COUNT} datagrams unless told otherwise."""
        self.assertEqual(udp_service("--udp", "5353", "127.0.0.2").relay.resend, RESEND_COUNT)
        service = udp_service("--udp", "--udp-resend", "0", "5353", "127.0.0.2")
        self.assertEqual(service.relay.resend, 0)

    def test_probe_built_when_asked(self) -> None:
        """C{--udp-check} adds a probe with the interval and timeout given."""
        service = udp_service("--udp", "--udp-check", "00ff:00", "--udp-check-interval", "5",
                              "--udp-check-timeout", "0.5", "5353", "127.0.0.2")
        assert service.probe is not None
        self.assertEqual((service.probe.interval, service.probe.timeout), (5.0, 0.5))
        self.assertEqual(service.probe.spec.expect, b"\x00")

    def test_taken_port_is_one_line_error(self) -> None:
        """A port already in use stops start-up with one line naming the address."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            service = udp_service("--udp", f"127.0.0.1:{port}", "127.0.0.2")
            with self.assertRaises(StartupError) as caught:
                service.privilegedStartService()
        message = str(caught.exception.code)
        self.assertIn(f"udp:{port}:interface=127.0.0.1", message)
        self.assertIn("in use", message)
        self.assertNotIn("\n", message)

    def test_start_and_stop(self) -> Deferred[None]:
        """Started, the service reads; stopped, its socket and sessions are gone."""
        port = free_udp_port()
        service = udp_service("--udp", "--udp-check", "00", f"127.0.0.1:{port}", "127.0.0.2:9")
        service.start_relaying()
        assert service.front is not None
        self.assertEqual(service.front.address(), ("127.0.0.1", port))
        d = service.stopService()
        self.assertIsNone(service.front)
        assert service.probe is not None
        self.assertEqual(service.probe._pending, {})
        return d

    def test_open_file_limit(self) -> None:
        """The soft limit on open files is raised to what the sessions need, if allowed."""
        self.assertGreaterEqual(raise_open_file_limit(64), 64)
