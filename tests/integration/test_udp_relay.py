# -*- test-case-name: tests.integration.test_udp_relay -*-
"""
The UDP balancer in-process on the real reactor, with real sockets on loopback: echo
backends, clients from several 127.0.0.x addresses, a dead backend, a flood, a DNS-like probe.
"""

from __future__ import annotations

import os
import random
import socket
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from penbal.address import BackendSpec
from penbal.backend import Fitness
from penbal.balancer import Balancer, Settings
from penbal.connlog import ConnectionLog
from penbal.interfaces import PolicyContext
from penbal.policies.registry import find_policies
from penbal.pool import BackendPool
from penbal.udp.listen import parse_udp_listen
from penbal.udp.probe import UDPProbe, parse_udp_check
from penbal.udp.relay import UDPRelay
from penbal.udp.resolve import HostResolver
from penbal.udp.service import UDPBalancerService
from penbal.udp.sockets import open_upstream
from tests.udp.loopback import Client, EchoBackend, free_udp_port, reactor, wait_until

DNS_QUERY = "abcd01000001000000000000076578616d706c650000010001"
"""A DNS query for example./A with id 0xabcd; a good answer starts abcd81."""


class DNSLikeBackend(EchoBackend):
    """Answers like a DNS server: the query's id, then flags 0x8180, then the question."""

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append(datagram)
        if not self.silent:
            self.transport.write(datagram[:2] + b"\x81\x80" + datagram[4:], addr)  # type: ignore[union-attr]


class Balancing:
    """A UDP balancer service over the given backend specs, started on the real reactor."""

    def __init__(self, case: TestCase, backends: list[str], interface: str = "127.0.0.1",
                 policy: str = "roundrobin", capacity: int = 2048, idle: float = 30.0,
                 check: str | None = None, **settings: Any) -> None:
        port = free_udp_port(interface or "0.0.0.0")
        listen = f"[{interface}]:{port}" if ":" in interface else f"{interface}:{port}"
        spec = parse_udp_listen(listen if interface else str(port))
        self.pool = BackendPool(reactor, [_backend(text) for text in backends])
        context = PolicyContext(clock=reactor, random=random.Random(7))
        policy_object = find_policies()[policy].makePolicy(context)
        self.balancer = Balancer(self.pool, policy_object, Settings(**settings))
        opener = open_upstream(reactor)
        resolver = HostResolver(reactor.nameResolver, reactor)
        self.relay = UDPRelay(reactor, self.balancer, opener, resolver, capacity=capacity,
                              idle=idle, connlog=ConnectionLog())
        self.probe = None
        if check is not None:
            self.probe = UDPProbe(reactor, self.pool, parse_udp_check(check), opener, resolver,
                                  interval=0.2, timeout=0.15, on_unfit=self.relay.move_off)
        self.service = UDPBalancerService(reactor, spec, self.relay, self.probe)
        self.service.start_relaying()
        case.addCleanup(self.service.stopService)
        assert self.service.front is not None
        self.port = self.service.front.address()[1]
        self.host = spec.interface or "127.0.0.1"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def backend(self, echo: EchoBackend) -> Any:
        found = self.pool.find(echo.address)
        assert found is not None
        return found


def _backend(text: str) -> BackendSpec:
    from penbal.address import parse_backend

    return parse_backend(text, None)


def all_have(clients: list[Client], replies: int) -> bool:
    """True once every client has received at least C{replies} datagrams."""
    return all(len(c.received) >= replies for c in clients)


def at_least(figure: Callable[[], int], value: int) -> bool:
    return figure() >= value


class RelayTests(TestCase):
    timeout = 60

    def echoes(self, *names: str, host: str = "127.0.0.1") -> list[EchoBackend]:
        backends = [EchoBackend(name, host) for name in names]
        for backend in backends:
            self.addCleanup(backend.stop)
        return backends

    def clients(self, hosts: list[str], per_host: int,
                connect: tuple[str, int] | None = None) -> list[Client]:
        made = [Client(host, connect) for host in hosts for _ in range(per_host)]
        for client in made:
            self.addCleanup(client.close)
        return made

    async def _many_clients(self) -> None:
        echoes = self.echoes("a", "b", "c", "d")
        lb = Balancing(self, [e.address for e in echoes])
        hosts = [f"127.0.0.{i}" for i in range(10, 15)]
        clients = self.clients(hosts, 20)
        for round_ in range(3):
            for client in clients:
                client.send(b"%s:%d-%d" % (client.address[0].encode(), client.address[1], round_),
                            lb.address)
            await wait_until(partial(all_have, clients, round_ + 1), 10,
                             f"round {round_} of replies")
        for client in clients:
            names = {reply.split(b":", 1)[0] for reply in client.received}
            self.assertEqual(len(names), 1, "one session, one backend")
            own = b"%s:%d" % (client.address[0].encode(), client.address[1])
            self.assertEqual([r.split(b":", 1)[1] for r in client.received],
                             [own + b"-0", own + b"-1", own + b"-2"])
            self.assertEqual(client.senders, {lb.address})
        self.assertEqual(Counter(lb.backend(e).counters.total for e in echoes), {25: 4})
        for echo in echoes:
            counters = lb.backend(echo).counters
            self.assertEqual((counters.datagrams_to_backend, counters.datagrams_from_backend),
                             (75, 75))

    def test_replies_reach_the_right_client(self) -> Deferred[None]:
        """100 clients from five addresses: each gets its own replies; round-robin is even."""
        return Deferred.fromCoroutine(self._many_clients())

    async def _sticky(self) -> None:
        echoes = self.echoes("a", "b", "c")
        lb = Balancing(self, [e.address for e in echoes], policy="sticky")
        clients = self.clients([f"127.0.0.{i}" for i in range(20, 26)], 5)
        for client in clients:
            client.send(b"x", lb.address)
        await wait_until(lambda: all(c.received for c in clients), 10, "replies")
        by_host: dict[str, set[bytes]] = {}
        for client in clients:
            by_host.setdefault(client.address[0], set()).add(client.received[0][:1])
        self.assertTrue(all(len(names) == 1 for names in by_host.values()), by_host)

    def test_sticky_policy_by_client_address(self) -> Deferred[None]:
        """With Pen's default (sticky) policy, every port of one client IP uses one backend."""
        return Deferred.fromCoroutine(self._sticky())

    async def _wildcard(self) -> None:
        [echo] = self.echoes("a")
        lb = Balancing(self, [echo.address], interface="")
        clients = [Client("127.0.0.30", ("127.0.0.2", lb.port)),
                   Client("127.0.0.31", ("127.0.0.3", lb.port))]
        for client in clients:
            self.addCleanup(client.close)
            client.send(b"q")
        await wait_until(lambda: all(c.received for c in clients), 10, "replies")
        self.assertEqual([c.received for c in clients], [[b"a:q"], [b"a:q"]])

    def test_wildcard_replies_from_the_address_used(self) -> Deferred[None]:
        """Listening on every address, connected clients of 127.0.0.2 and .3 get replies."""
        return Deferred.fromCoroutine(self._wildcard())

    async def _ipv6(self) -> None:
        [echo] = self.echoes("six", host="::1")
        lb = Balancing(self, [echo.address], interface="::1")
        [client] = self.clients(["::1"], 1)
        client.send(b"q", lb.address)
        await wait_until(lambda: bool(client.received), 10, "the reply")
        self.assertEqual(client.received, [b"six:q"])

    def test_ipv6(self) -> Deferred[None]:
        """IPv6 front, backend and client."""
        return Deferred.fromCoroutine(self._ipv6())

    async def _dead_backend(self) -> None:
        a, b = self.echoes("a", "b")
        dead = f"127.0.0.1:{free_udp_port()}"
        lb = Balancing(self, [a.address, b.address, dead], blacklist=60)
        clients = self.clients([f"127.0.0.{i}" for i in range(40, 43)], 10)
        for client in clients:
            client.send(b"1", lb.address)
        # A datagram that drew the ICMP error from the dead port is not sent again: that
        # backend never replied, so it might have been one it took.  Its sessions move.
        stats = lb.relay.stats
        await wait_until(lambda: sum(bool(c.received) for c in clients) + stats.moved
                         == len(clients), 10, "first replies and moves")
        self.assertGreater(stats.moved, 0)
        self.assertEqual(stats.resent, 0)
        dead_backend = lb.pool.find(dead)
        assert dead_backend is not None
        self.assertTrue(dead_backend.is_blacklisted(reactor.seconds()))
        moved = [c for c in clients if not c.received]
        for client in moved:  # they ask again, as DNS clients do; their session has moved
            client.send(b"1", lb.address)
        await wait_until(lambda: all(c.received for c in clients), 10, "every first reply")
        self.assertTrue(all(not c.received[0].startswith(b"dead") for c in moved))
        self.assertEqual(dead_backend.counters.active, 0)
        self.assertEqual(dead_backend.blacklist_reason, "ICMP port unreachable")
        on_b = [c for c in clients if c.received[0].startswith(b"b:")]
        self.assertGreater(len(on_b), 0)
        await b.stop()
        for client in clients:
            client.send(b"2", lb.address)
        # The first datagram to the stopped backend is lost, then resent to the next one.
        await wait_until(lambda: all(len(c.received) >= 2 for c in clients), 10,
                         "second replies")
        # b replied before: the datagram lost with it is sent again to a.
        for client in on_b:
            self.assertEqual(client.received[1], b"a:2")
        self.assertEqual(stats.resent, len(on_b))
        self.assertTrue(lb.backend(b).is_blacklisted(reactor.seconds()))
        self.assertEqual(lb.backend(b).counters.active, 0)
        self.assertEqual(lb.backend(a).counters.active, len(clients))

    def test_unreachable_backend_detected_and_sessions_move(self) -> Deferred[None]:
        """A closed port is blacklisted at once; when a backend stops, its sessions move."""
        return Deferred.fromCoroutine(self._dead_backend())

    async def _never_replies(self) -> None:
        a, b = self.echoes("a", "b")
        a.silent = b.silent = True  # statsd-like: nothing ever comes back
        lb = Balancing(self, [a.address, b.address], blacklist=60)
        clients = self.clients([f"127.0.0.{i}" for i in range(50, 54)], 5)

        def send(round_: int, to: list[Client]) -> None:
            for client in to:
                client.send(b"%s:%d:%d" % (client.address[0].encode(), client.address[1],
                                           round_), lb.address)

        def arrived() -> Counter[bytes]:
            return Counter(a.received + b.received)

        send(1, clients)
        await wait_until(lambda: sum(arrived().values()) == len(clients), 10, "round 1")
        on_b = lb.backend(b).counters.active
        self.assertGreater(on_b, 0)
        await b.stop()
        send(2, clients)
        # The round-2 datagrams of b's sessions hit its closed port: ICMP, b is blacklisted,
        # its sessions move to a; the datagrams are not sent again (b never replied).
        await wait_until(lambda: lb.relay.stats.moved == on_b, 10, "b's sessions to move")
        send(3, clients)
        await wait_until(lambda: len(a.received) == 3 * len(clients) - 2 * on_b, 10,
                         "round 3 on a")
        self.assertEqual(lb.relay.stats.resent, 0)
        self.assertEqual(max(arrived().values()), 1, "a datagram arrived twice")
        self.assertEqual(sorted(d.rsplit(b":", 1)[1] for d in a.received + b.received
                                if d.endswith(b":3")), [b"3"] * len(clients))
        self.assertEqual(lb.backend(a).counters.active, len(clients))

    def test_never_replying_backend_gets_no_duplicates(self) -> Deferred[None]:
        """statsd-like backends: when one stops, its sessions move and nothing arrives twice."""
        return Deferred.fromCoroutine(self._never_replies())

    async def _hash(self) -> None:
        echoes = self.echoes("a", "b", "c")
        lb = Balancing(self, [e.address for e in echoes], policy="hash")
        hosts = [f"127.0.0.{i}" for i in range(60, 72)]
        clients = self.clients(hosts, 3)
        for client in clients:
            client.send(b"x", lb.address)
        await wait_until(lambda: all(c.received for c in clients), 10, "replies")
        from penbal.policies.hash import rendezvous_order

        names = {lb.backend(e).address: e.name for e in echoes}
        for client in clients:
            expected = rendezvous_order(client.address[0], list(lb.pool))[0]
            self.assertEqual(client.received[0], names[expected.address] + b":x")
        self.assertGreater(len({c.received[0] for c in clients}), 1)

    def test_hash_policy_by_client_ip(self) -> Deferred[None]:
        """With the hash policy every port of one IP lands on that IP's rendezvous backend."""
        return Deferred.fromCoroutine(self._hash())

    async def _flood(self) -> None:
        a, b = self.echoes("a", "b")
        lb = Balancing(self, [a.address, b.address], capacity=100)
        fds_before = len(os.listdir("/proc/self/fd"))
        sent = 0
        for batch in range(6):
            for i in range(500):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind((f"127.0.1.{1 + (batch * 500 + i) % 200}", 0))
                    s.sendto(b"flood", lb.address)
                sent += 1
            await wait_until(partial(at_least, lambda: lb.relay.stats.datagrams_in, sent), 20,
                             f"{sent} datagrams in")
            self.assertLessEqual(len(lb.relay.table), 100)
            self.assertLessEqual(len(os.listdir("/proc/self/fd")) - fds_before, 100 + 10)
        self.assertEqual(len(lb.relay.table), 100)
        self.assertEqual(lb.relay.table.evicted, 2900)
        self.assertEqual(sum(x.counters.active for x in lb.pool), 100)

    def test_flood_keeps_table_at_its_bound(self) -> Deferred[None]:
        """3,000 source ports: the table and the open sockets stay at the bound of 100."""
        return Deferred.fromCoroutine(self._flood())

    async def _big_and_ordered(self) -> None:
        [echo] = self.echoes("a")
        lb = Balancing(self, [echo.address])
        [client] = self.clients(["127.0.0.50"], 1)
        rng = random.Random(3)
        for size in (65_507, 65_000, 60_001):
            payload = rng.randbytes(size)
            before = len(client.received)
            client.send(payload, lb.address)
            await wait_until(partial(all_have, [client], before + 1), 10, f"{size} bytes back")
            self.assertEqual(client.received[-1], payload)
        before = len(client.received)
        for i in range(200):
            client.send(b"%03d" % i, lb.address)
        await wait_until(lambda: len(client.received) >= before + 200, 10, "200 replies")
        self.assertEqual(client.received[before:], [b"a:%03d" % i for i in range(200)])

    def test_largest_datagrams_unchanged_and_in_order(self) -> Deferred[None]:
        """65,507-byte datagrams pass both ways unchanged; 200 small ones keep their order."""
        return Deferred.fromCoroutine(self._big_and_ordered())

    async def _probe(self) -> None:
        good, quiet = DNSLikeBackend("good"), DNSLikeBackend("quiet")
        for backend in (good, quiet):
            self.addCleanup(backend.stop)
        quiet.silent = True
        lb = Balancing(self, [good.address, quiet.address], check=f"{DNS_QUERY}:abcd81")
        await wait_until(lambda: lb.backend(quiet).health.fitness is Fitness.UNFIT, 10,
                         "the silent backend to be unfit")
        self.assertIn("no reply", lb.backend(quiet).health.reason)
        self.assertIs(lb.backend(good).health.fitness, Fitness.FIT)
        clients = self.clients(["127.0.0.60"], 6)
        for client in clients:
            client.send(bytes.fromhex(DNS_QUERY), lb.address)
        await wait_until(lambda: all(c.received for c in clients), 10, "answers")
        self.assertEqual(lb.backend(quiet).counters.total, 0)
        quiet.silent = False
        await wait_until(lambda: lb.backend(quiet).health.fitness is Fitness.FIT, 10,
                         "the backend to be fit again")

    def test_dns_probe_marks_silent_backend_down(self) -> Deferred[None]:
        """A backend that does not answer the DNS-like probe is unfit until it answers again."""
        return Deferred.fromCoroutine(self._probe())

    async def _idle(self) -> None:
        [echo] = self.echoes("a")
        lb = Balancing(self, [echo.address], idle=0.2)
        [client] = self.clients(["127.0.0.70"], 1)
        client.send(b"q", lb.address)
        await wait_until(lambda: bool(client.received), 10, "the reply")
        self.assertEqual(len(lb.relay.table), 1)
        await wait_until(lambda: len(lb.relay.table) == 0, 5, "the session to expire")
        self.assertEqual(lb.backend(echo).counters.active, 0)
        self.assertEqual(lb.relay.connlog.recent[-1].ended_by, "idle timeout")

    def test_idle_session_expires(self) -> Deferred[None]:
        """A session without traffic for --udp-idle seconds ends and frees its socket."""
        return Deferred.fromCoroutine(self._idle())
