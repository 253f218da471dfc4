# -*- test-case-name: tests.udp.test_probe -*-
"""
Tests of L{penbal.udp.probe}: the C{--udp-check} option and the active probe's verdicts.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.address import SpecError
from penbal.backend import Backend, Fitness, Health
from penbal.udp.probe import UDPCheckSpec, UDPProbe, parse_udp_check
from tests.udp.fixtures import UDPHarness


class ParseTests(SynchronousTestCase):
    def test_payload_only(self) -> None:
        """A payload alone: any reply will do."""
        self.assertEqual(parse_udp_check("00ff10"), UDPCheckSpec(b"\x00\xff\x10", None))

    def test_payload_and_expect(self) -> None:
        """PAYLOAD:EXPECT gives the start of a good reply."""
        spec = parse_udp_check("abcd:ab")
        self.assertEqual((spec.payload, spec.expect), (b"\xab\xcd", b"\xab"))
        self.assertEqual(spec.format(), "abcd:ab")

    def test_bad_hex_refused(self) -> None:
        """Odd or non-hex digits are refused with the value and the expected form."""
        for text in ("abc", "zz", "ab:xyz", "", "ab:"):
            with self.assertRaises(SpecError) as caught:
                parse_udp_check(text)
            self.assertIn("HEX_PAYLOAD[:EXPECT_HEX]", str(caught.exception))


class ProbeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = UDPHarness(backends=2)
        self.unfit: list[tuple[Backend, str]] = []

    def probe(self, expect: bytes | None = b"\x81") -> UDPProbe:
        probe = UDPProbe(self.h.clock, self.h.pool, UDPCheckSpec(b"\x01\x02", expect),
                         self.h.opener, self.h.resolver, interval=2.0, timeout=1.0,
                         on_unfit=lambda b, why: self.unfit.append((b, why)))
        self.addCleanup(probe.stop)
        return probe

    def test_probes_every_backend_each_interval(self) -> None:
        """Each interval, every backend gets the payload from a fresh socket."""
        probe = self.probe()
        probe.start()
        self.assertEqual([(link.port, link.sent) for link in self.h.opener.links],
                         [(5001, [b"\x01\x02"]), (5002, [b"\x01\x02"])])
        self.h.clock.advance(2)
        self.assertEqual(len(self.h.opener.links), 4)

    def test_silent_backend_marked_unfit(self) -> None:
        """No reply within the timeout: unfit, with the reason, and its sessions are moved."""
        probe = self.probe()
        probe.start()
        self.h.opener.links[1].reply(b"\x81\x80")
        self.h.clock.advance(1)
        first, second = self.h.pool
        self.assertEqual(first.health.fitness, Fitness.UNFIT)
        self.assertIn("no reply within 1s", first.health.reason)
        self.assertEqual(second.health.fitness, Fitness.FIT)
        self.assertEqual(self.unfit, [(first, first.health.reason)])
        self.assertTrue(all(link.closed for link in self.h.opener.links))

    def test_unfit_backend_gets_no_new_sessions(self) -> None:
        """The pool leaves an unfit backend out of new choices."""
        probe = self.probe()
        probe.start()
        self.h.opener.links[1].reply(b"\x81")
        self.h.clock.advance(1)
        self.h.send(b"q")
        self.assertEqual(self.h.opener.links[-1].port, 5002)

    def test_wrong_reply_is_unfit(self) -> None:
        """A reply that does not start with EXPECT does not count; the reason shows it."""
        probe = self.probe()
        probe.start()
        self.h.opener.links[0].reply(b"\x00bad")
        self.h.clock.advance(1)
        health = self.h.pool[0].health
        self.assertEqual(health.fitness, Fitness.UNFIT)
        self.assertIn("00626164 does not match", health.reason)

    def test_any_reply_without_expect(self) -> None:
        """Without EXPECT any reply means fit."""
        probe = self.probe(expect=None)
        probe.start()
        for link in self.h.opener.links:
            link.reply(b"whatever")
        self.h.clock.advance(1)
        self.assertEqual([b.health.fitness for b in self.h.pool], [Fitness.FIT] * 2)

    def test_icmp_refusal_is_unfit_at_once(self) -> None:
        """A port unreachable makes the backend unfit without waiting for the timeout."""
        probe = self.probe()
        probe.start()
        self.h.opener.links[0].refused()
        self.assertEqual(self.h.pool[0].health.fitness, Fitness.UNFIT)
        self.assertEqual(self.h.pool[0].health.reason, "ICMP port unreachable")

    def test_recovers_when_it_answers(self) -> None:
        """An unfit backend that answers again is fit again, and its blacklisting is lifted."""
        probe = self.probe()
        probe.start()
        self.h.clock.advance(1)
        first = self.h.pool[0]
        self.assertEqual(first.health.fitness, Fitness.UNFIT)
        first.blacklist(self.h.clock.seconds(), 30, "ICMP port unreachable")
        self.h.clock.advance(1)
        self.h.opener.links[-2].reply(b"\x81")
        self.assertEqual(first.health.fitness, Fitness.FIT)
        self.assertFalse(first.is_blacklisted(self.h.clock.seconds()))
        self.assertLess(first.health.details["rtt"], 1.0)

    def test_other_checkers_verdict_kept(self) -> None:
        """A backend made unfit by another health check is not made fit by this probe."""
        first = self.h.pool[0]
        first.health = Health(Fitness.UNFIT, "galera: donor", 0.0, {"check": "galera"})
        probe = self.probe()
        probe.start()
        self.h.opener.links[0].reply(b"\x81")
        self.assertEqual(first.health.reason, "galera: donor")

    def test_one_probe_in_flight_per_backend(self) -> None:
        """A backend still being probed is not probed again."""
        probe = UDPProbe(self.h.clock, self.h.pool, UDPCheckSpec(b"x"), self.h.opener,
                         self.h.resolver, interval=1.0, timeout=5.0)
        probe.start()
        self.addCleanup(probe.stop)
        self.h.clock.advance(0.5)
        probe.probe_all()
        self.assertEqual(len(self.h.opener.links), 2)

    def test_stop_cancels_everything(self) -> None:
        """After stop no timer is left and the probe sockets are closed."""
        probe = self.probe()
        probe.start()
        probe.stop()
        self.assertEqual(self.h.clock.getDelayedCalls(), [])
        self.assertEqual(self.h.opener.open(), [])

    def test_named_backend_resolved_first(self) -> None:
        """A backend given by name is probed at its resolved address."""
        h = UDPHarness(hosts=["dns.example"])
        probe = UDPProbe(h.clock, h.pool, UDPCheckSpec(b"x"), h.opener, h.resolver)
        probe.start()
        self.addCleanup(probe.stop)
        h.names.answer("127.10.2.3")
        self.assertEqual(h.opener.links[0].host, "127.10.2.3")
