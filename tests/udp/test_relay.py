# -*- test-case-name: tests.udp.test_relay -*-
"""
Tests of L{penbal.udp.relay}: sessions, replies, limits and moving off dead backends.
"""

from __future__ import annotations

import errno

from twisted.trial.unittest import SynchronousTestCase

from penbal.policies.roundrobin import RoundRobinPolicy
from penbal.udp.relay import RESEND_COUNT, RESEND_WINDOW, WAITING_LIMIT, client_of
from tests.udp.fixtures import UDPHarness


class SessionTests(SynchronousTestCase):
    def test_first_datagram_opens_a_session(self) -> None:
        """A new client's datagram goes out on a new link to the policy's first choice."""
        h = UDPHarness()
        h.send(b"query")
        [link] = h.opener.links
        self.assertEqual((link.host, link.port, link.sent), ("127.0.0.1", 5001, [b"query"]))
        counters = h.backend(5001).counters
        self.assertEqual((counters.total, counters.active), (1, 1))
        self.assertEqual((counters.datagrams_to_backend, counters.bytes_to_backend), (1, 5))

    def test_same_client_same_session(self) -> None:
        """Later datagrams of one client address reuse its link, in order."""
        h = UDPHarness()
        for i in range(5):
            h.send(b"%d" % i)
        [link] = h.opener.links
        self.assertEqual(link.sent, [b"0", b"1", b"2", b"3", b"4"])
        self.assertEqual(h.backend(5001).counters.total, 1)

    def test_reply_goes_to_client_from_local_address(self) -> None:
        """A backend's reply leaves through the front, to the client, from the address it used."""
        h = UDPHarness()
        h.send(b"q", host="127.0.0.9", port=4242, local="127.0.0.3")
        h.opener.links[0].reply(b"answer")
        self.assertEqual(h.front.sent, [(b"answer", ("127.0.0.9", 4242), "127.0.0.3")])
        counters = h.backend(5001).counters
        self.assertEqual((counters.datagrams_from_backend, counters.bytes_from_backend), (1, 6))
        self.assertEqual(h.relay.stats.datagrams_out, 1)

    def test_round_robin_spreads_sessions_evenly(self) -> None:
        """300 clients over three backends: 100 sessions each."""
        h = UDPHarness(backends=3, policy=RoundRobinPolicy())
        for port in range(300):
            h.send(b"x", port=10000 + port)
        self.assertEqual([len(h.opener.to(p)) for p in (5001, 5002, 5003)], [100, 100, 100])
        self.assertEqual([b.counters.active for b in h.pool], [100, 100, 100])

    def test_idle_session_ends(self) -> None:
        """After the idle time without traffic the link closes and the backend is freed."""
        h = UDPHarness(idle=10)
        h.send(b"q")
        h.clock.advance(12)
        self.assertTrue(h.opener.links[0].closed)
        self.assertEqual(h.backend(5001).counters.active, 0)
        self.assertEqual(len(h.relay.table), 0)
        self.assertEqual(h.connlog.recent[-1].ended_by, "idle timeout")

    def test_replies_keep_session_alive(self) -> None:
        """Traffic from the backend counts as activity too."""
        h = UDPHarness(idle=10)
        h.send(b"q")
        for _ in range(5):
            h.clock.advance(8)
            h.opener.links[0].reply(b"tick")
        self.assertFalse(h.opener.links[0].closed)

    def test_new_session_after_expiry(self) -> None:
        """A client that comes back after expiry gets a new session."""
        h = UDPHarness(idle=10)
        h.send(b"1")
        h.clock.advance(20)
        h.send(b"2")
        self.assertEqual(len(h.opener.links), 2)
        self.assertEqual(h.opener.links[1].sent, [b"2"])

    def test_flood_is_bounded(self) -> None:
        """Thousands of source ports leave at most C{capacity} sessions and open links."""
        h = UDPHarness(capacity=50)
        for port in range(3000):
            h.send(b"x", port=port + 1)
        self.assertEqual(len(h.relay.table), 50)
        self.assertEqual(len(h.opener.open()), 50)
        self.assertEqual(sum(b.counters.active for b in h.pool), 50)
        self.assertEqual(h.relay.table.evicted, 2950)

    def test_evicted_client_still_served(self) -> None:
        """An evicted client's next datagram starts a new session."""
        h = UDPHarness(capacity=1)
        h.send(b"a", port=1)
        h.send(b"b", port=2)
        h.send(b"c", port=1)
        self.assertEqual([link.sent for link in h.opener.links], [[b"a"], [b"b"], [b"c"]])

    def test_client_acl_refuses_new_clients(self) -> None:
        """A client the ACL refuses gets no session; its datagrams are counted as denied."""
        h = UDPHarness(admit=lambda client: client.host != "127.10.9.9")
        h.send(b"no", host="127.10.9.9")
        h.send(b"yes", host="127.10.0.1")
        self.assertEqual([link.sent for link in h.opener.links], [[b"yes"]])
        self.assertEqual(h.relay.stats.denied, 1)

    def test_ipv4_mapped_client_seen_as_ipv4(self) -> None:
        """Policies see an IPv4 client of a dual-stack socket as IPv4."""
        self.assertEqual(client_of(("::ffff:127.10.0.1", 53)).host, "127.10.0.1")
        self.assertEqual(client_of(("::1", 53)).host, "::1")

    def test_sessions_are_live_on_their_backend(self) -> None:
        """A session sits in its backend's live set; closing it from there ends it."""
        h = UDPHarness()
        h.send(b"q")
        backend = h.backend(5001)
        [session] = backend.live
        session.ended_by = "backend removed by the operator"
        session.close()
        self.assertEqual(backend.live, set())
        self.assertTrue(h.opener.links[0].closed)
        self.assertEqual(h.connlog.recent[-1].ended_by, "backend removed by the operator")
        h.send(b"again")
        self.assertEqual(len(h.opener.links), 2)

    def test_retiring_backend_leaves_after_last_session(self) -> None:
        """A backend retired by the operator leaves the table once its sessions have ended."""
        h = UDPHarness(idle=10)
        h.send(b"q")
        backend = h.backend(5001)
        h.pool.retire(backend)
        self.assertIn(backend, list(h.pool))
        h.clock.advance(12)
        self.assertNotIn(backend, list(h.pool))

    def test_stop_ends_everything(self) -> None:
        """Stopping closes every link and frees every backend."""
        h = UDPHarness()
        for port in range(6):
            h.send(b"x", port=port + 1)
        h.relay.stop()
        self.assertEqual(h.opener.open(), [])
        self.assertEqual([b.counters.active for b in h.pool], [0, 0, 0])
        self.assertEqual(h.clock.getDelayedCalls(), [])


class DeadBackendTests(SynchronousTestCase):
    def test_refusal_blacklists_and_moves(self) -> None:
        """An ICMP port unreachable blacklists the backend; the session moves."""
        h = UDPHarness(blacklist=30)
        h.send(b"q1")
        first = h.opener.links[0]
        first.refused()
        dead = h.backend(5001)
        self.assertTrue(dead.is_blacklisted(h.clock.seconds()))
        self.assertEqual(dead.blacklist_reason, "ICMP port unreachable")
        self.assertTrue(first.closed)
        second = h.opener.links[1]
        self.assertEqual(second.port, 5002)
        h.send(b"q2")
        self.assertEqual(second.sent, [b"q2"])
        self.assertEqual((dead.counters.active, h.backend(5002).counters.active), (0, 1))
        self.assertEqual(h.relay.stats.moved, 1)

    def test_refusal_moves_every_session_of_the_backend(self) -> None:
        """One refusal moves all sessions of that backend, not only the one that saw it."""
        h = UDPHarness(backends=2)
        for port in range(6):
            h.send(b"x", port=port + 1)
        on_first = h.opener.to(5001)
        self.assertEqual(len(on_first), 6)
        on_first[0].refused()
        self.assertTrue(all(link.closed for link in on_first))
        self.assertEqual(h.backend(5001).counters.active, 0)
        self.assertEqual(h.backend(5002).counters.active, 6)

    def test_new_sessions_avoid_blacklisted_backend(self) -> None:
        """While blacklisted, a backend gets no new session; afterwards it does again."""
        h = UDPHarness(backends=2, blacklist=30)
        h.send(b"x", port=1)
        h.opener.links[0].refused()
        for port in range(2, 6):
            h.send(b"x", port=port)
        self.assertEqual(len(h.opener.to(5001)), 1)
        h.clock.advance(31)
        for port in range(6, 10):
            h.send(b"x", port=port)
        self.assertEqual(len(h.opener.to(5001)), 5)

    def test_refused_send_moves(self) -> None:
        """A datagram refused by send itself (never sent) goes to the next backend."""
        h = UDPHarness()
        h.send(b"1")
        h.opener.links[0].refuse_sends = True
        h.send(b"2")
        self.assertEqual(h.opener.links[1].sent, [b"2"])  # "1" may have arrived: not again
        self.assertEqual(h.relay.stats.resent, 0)
        self.assertEqual(h.backend(5001).counters.datagrams_to_backend, 1)

    def test_refused_send_moves_after_replies(self) -> None:
        """With a backend that replies, the unanswered datagram before the refused one goes too."""
        h = UDPHarness()
        h.send(b"0")
        h.opener.links[0].reply(b"r0")
        h.send(b"1")
        h.opener.links[0].refuse_sends = True
        h.send(b"2")
        self.assertEqual(h.opener.links[1].sent, [b"1", b"2"])
        self.assertEqual(h.relay.stats.resent, 1)

    def test_answered_datagrams_not_resent(self) -> None:
        """Only datagrams without a reply since are sent again to the new backend."""
        h = UDPHarness()
        h.send(b"1")
        h.opener.links[0].reply(b"r1")
        h.send(b"2")
        h.opener.links[0].refused()
        self.assertEqual(h.opener.links[1].sent, [b"2"])

    def test_old_datagrams_not_resent(self) -> None:
        """Datagrams older than the resend window are not sent again."""
        h = UDPHarness(idle=100)
        h.send(b"old")
        h.opener.links[0].reply(b"r")
        h.send(b"older")
        h.clock.advance(RESEND_WINDOW + 0.5)
        h.opener.links[0].refused()
        self.assertEqual(h.opener.links[1].sent, [])

    def test_stale_reply_ignored(self) -> None:
        """A late datagram from a session's previous link is not relayed."""
        h = UDPHarness()
        h.send(b"1")
        old = h.opener.links[0]
        old.refused()
        old.reply(b"late")
        old.refused()
        self.assertEqual(h.front.sent, [])
        self.assertEqual(h.relay.stats.moved, 1)

    def test_stubborn_ends_session(self) -> None:
        """With C{--stubborn} a refused session ends instead of moving."""
        h = UDPHarness(stubborn=True)
        h.send(b"1")
        h.opener.links[0].refused()
        self.assertEqual(len(h.opener.links), 1)
        self.assertEqual(len(h.relay.table), 0)
        self.assertIn("stubborn", h.connlog.recent[-1].ended_by)

    def test_all_backends_dead(self) -> None:
        """When every backend refused, the session ends and new datagrams are dropped."""
        h = UDPHarness(backends=2)
        h.send(b"1")
        h.opener.links[0].refused()
        h.opener.links[1].refused()
        self.assertEqual(len(h.relay.table), 0)
        self.assertEqual(h.connlog.recent[-1].ended_by, "no backend")
        h.send(b"2")
        self.assertEqual(len(h.opener.links), 2)
        self.assertGreaterEqual(h.relay.stats.no_backend, 1)

    def test_no_blacklist_time_does_not_loop(self) -> None:
        """With C{-b 0} a session tries each backend once, then ends."""
        h = UDPHarness(backends=2, blacklist=0)
        h.send(b"1")
        for link in list(h.opener.links):
            link.refuse_sends = True
        h.send(b"2")
        h.opener.links[-1].refused()
        self.assertLessEqual(len(h.opener.links), 3)
        self.assertEqual(len(h.relay.table), 0)

    def test_emergency_server(self) -> None:
        """With every backend blacklisted, new sessions go to the emergency server."""
        h = UDPHarness(backends=1)
        emergency = h.emergency(5999)
        h.send(b"1", port=1)
        h.opener.links[0].refused()
        self.assertEqual(h.opener.links[1].port, 5999)
        h.send(b"2", port=2)
        self.assertEqual(h.opener.links[2].port, 5999)
        self.assertEqual(emergency.counters.active, 2)

    def test_move_off_for_unfit_backend(self) -> None:
        """L{UDPRelay.move_off} (the probe's verdict) moves a backend's sessions elsewhere."""
        h = UDPHarness(backends=2)
        h.send(b"1", port=1)
        h.relay.move_off(h.backend(5001), "unfit")
        self.assertEqual(h.opener.links[1].port, 5002)
        self.assertTrue(h.opener.links[0].closed)

    def test_socket_shortage_is_not_the_backends_fault(self) -> None:
        """Out of descriptors: the datagram is dropped, the backend stays usable."""
        h = UDPHarness()
        h.opener.fail = OSError(errno.EMFILE, "Too many open files")
        h.send(b"1")
        backend = h.backend(5001)
        self.assertFalse(backend.is_blacklisted(h.clock.seconds()))
        self.assertEqual(backend.counters.active, 0)
        self.assertEqual(len(h.relay.table), 0)


class ResendTests(SynchronousTestCase):
    """What a moved session sends again: never twice to a service that never replies."""

    def test_never_replying_backend_gets_no_duplicate(self) -> None:
        """statsd/syslog-like: datagrams the old backend may have taken are not sent again."""
        h = UDPHarness(backends=2)
        h.send(b"count:1|c", port=1)
        h.send(b"count:2|c", port=1)
        h.send(b"gauge:3|g", port=2)
        h.relay.move_off(h.backend(5001), "unfit")
        old = h.opener.to(5001)
        self.assertEqual([link.sent for link in old],
                         [[b"count:1|c", b"count:2|c"], [b"gauge:3|g"]])
        new = h.opener.to(5002)
        self.assertEqual(len(new), 2)
        self.assertEqual([link.sent for link in new], [[], []])
        h.send(b"count:4|c", port=1)
        delivered = [data for link in h.opener.links for data in link.sent]
        self.assertEqual(sorted(delivered),
                         sorted([b"count:1|c", b"count:2|c", b"gauge:3|g", b"count:4|c"]))
        self.assertEqual((h.relay.stats.moved, h.relay.stats.resent), (2, 0))

    def test_never_replying_backend_refused(self) -> None:
        """The same when the move comes from an ICMP error."""
        h = UDPHarness(backends=2)
        h.send(b"a")
        h.opener.links[0].refused()
        self.assertEqual(h.opener.links[1].sent, [])
        self.assertEqual(h.relay.stats.resent, 0)

    def test_dns_like_backend_gets_the_resend(self) -> None:
        """A backend that replied before: the unanswered queries go to the new backend."""
        h = UDPHarness(backends=2)
        h.send(b"query-1", port=1)
        h.opener.links[0].reply(b"answer-1")
        h.send(b"query-2", port=2)  # another client of the same backend, no answer yet
        h.send(b"query-3", port=2)
        h.opener.to(5001)[1].refused()
        self.assertEqual(sorted(link.sent for link in h.opener.to(5002)),
                         [[], [b"query-2", b"query-3"]])  # client 1's query was answered
        self.assertEqual(h.relay.stats.resent, 2)

    def test_resend_count_bounds_the_resend(self) -> None:
        """C{resend=N} sends at most the last N unanswered datagrams again."""
        h = UDPHarness(resend=2)
        h.send(b"q0")
        h.opener.links[0].reply(b"r0")
        for data in (b"q1", b"q2", b"q3"):
            h.send(data)
        h.opener.links[0].refused()
        self.assertEqual(h.opener.links[1].sent, [b"q2", b"q3"])

    def test_default_resend_count(self) -> None:
        """By default at most C{RESEND_COUNT} datagrams are sent again."""
        h = UDPHarness()
        h.send(b"q")
        h.opener.links[0].reply(b"r")
        for i in range(RESEND_COUNT + 3):
            h.send(b"%d" % i)
        h.opener.links[0].refused()
        self.assertEqual(h.opener.links[1].sent,
                         [b"%d" % i for i in range(3, RESEND_COUNT + 3)])

    def test_resend_zero_never_resends(self) -> None:
        """C{resend=0}: nothing is sent again, even for a backend that replies."""
        h = UDPHarness(resend=0)
        h.send(b"q0")
        h.opener.links[0].reply(b"r0")
        h.send(b"q1")
        session = h.relay.table.get(("127.0.0.2", 40000))
        assert session is not None
        self.assertEqual(len(session.recent), 0)
        h.opener.links[0].refused()
        self.assertEqual(h.opener.links[1].sent, [])
        self.assertEqual(h.relay.stats.resent, 0)

    def test_resend_zero_still_sends_what_never_left(self) -> None:
        """Even with C{resend=0} a datagram refused by send itself goes to the next backend."""
        h = UDPHarness(resend=0)
        h.send(b"1")
        h.opener.links[0].reply(b"r")
        h.opener.links[0].refuse_sends = True
        h.send(b"2")
        self.assertEqual(h.opener.links[1].sent, [b"2"])

    def test_negative_resend_refused(self) -> None:
        """A negative count is a programming error."""
        with self.assertRaises(ValueError):
            UDPHarness(resend=-1)


class NamedBackendTests(SynchronousTestCase):
    def test_datagrams_wait_for_the_name(self) -> None:
        """Datagrams sent while the backend's name is resolved go out after, in order."""
        h = UDPHarness(hosts=["db.example"])
        h.send(b"1")
        h.send(b"2")
        self.assertEqual(h.opener.links, [])
        h.names.answer("127.10.0.7")
        [link] = h.opener.links
        self.assertEqual((link.host, link.sent), ("127.10.0.7", [b"1", b"2"]))

    def test_waiting_is_bounded(self) -> None:
        """At most C{WAITING_LIMIT} datagrams wait for a name; the rest are dropped."""
        h = UDPHarness(hosts=["db.example"])
        for i in range(WAITING_LIMIT + 10):
            h.send(b"%d" % i)
        h.names.answer("127.10.0.7")
        self.assertEqual(len(h.opener.links[0].sent), WAITING_LIMIT)
        self.assertEqual(h.relay.stats.dropped, 10)

    def test_name_is_cached(self) -> None:
        """A second client does not resolve the name again."""
        h = UDPHarness(hosts=["db.example"])
        h.send(b"1", port=1)
        h.names.answer("127.10.0.7")
        h.send(b"2", port=2)
        self.assertEqual(h.names.pending, [])
        self.assertEqual(h.opener.links[1].host, "127.10.0.7")

    def test_ipv4_preferred(self) -> None:
        """A name with both kinds of address is reached over IPv4."""
        h = UDPHarness(hosts=["db.example"])
        h.send(b"1")
        h.names.answer("::1", "127.0.0.1")
        self.assertEqual(h.opener.links[0].host, "127.0.0.1")

    def test_unknown_name_blacklists(self) -> None:
        """A backend whose name does not resolve is blacklisted; the session moves."""
        h = UDPHarness(hosts=["gone.example", "127.0.0.1"])
        h.send(b"1")
        h.names.answer()
        backend = h.backend(5001)
        self.assertTrue(backend.is_blacklisted(h.clock.seconds()))
        self.assertIn("cannot resolve gone.example", backend.blacklist_reason)
        self.assertEqual((h.opener.links[0].port, h.opener.links[0].sent), (5002, [b"1"]))
