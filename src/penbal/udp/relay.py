# -*- test-case-name: tests.udp.test_relay -*-
"""
Relaying UDP: each client address gets a session on the backend the policy picked, with its
own connected socket; replies go back through the front socket, from the address the client
sent to.  A backend that answers with an ICMP error is blacklisted and its sessions move on.

On a move, the datagrams a session sent in the last L{RESEND_WINDOW} seconds and that got no
reply (kept by L{penbal.udp.resend}) are sent again to the new backend, but only if the old
backend has replied to anything before (a request/reply service such as DNS, whose unanswered
requests are most likely lost).  A backend that never replied (statsd, syslog) may well have
received them: they are not sent again, so such services never see a datagram twice.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from penbal.backend import Backend
from penbal.balancer import Balancer
from penbal.connlog import ConnectionLog, ConnectionRecord
from penbal.interfaces import ClientInfo
from penbal.udp.resend import RESEND_COUNT, RESEND_WINDOW
from penbal.udp.resolve import HostResolver
from penbal.udp.sessions import IDLE, UDPSession, UDPSessionTable
from penbal.udp.sockets import Address, BackendUnreachableError, Opener, UpstreamLink
from penbal.udp.stats import UDPStats

log = Logger()

__all__ = [
    "RESEND_COUNT", "RESEND_WINDOW", "WAITING_LIMIT", "Opener", "UDPRelay", "UDPStats",
    "UpstreamLink", "client_of",
]

WAITING_LIMIT = 64
"""Datagrams a session holds while its backend's host name is being resolved."""


class FrontTransport(Protocol):
    """Where replies to clients go (the front socket)."""

    def send(self, data: bytes, addr: Address, local: str | None) -> bool: ...


def client_of(addr: Address) -> ClientInfo:
    """The client as policies see it: an IPv4 client of a dual-stack socket stays IPv4."""
    host = addr[0]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return ClientInfo(host, addr[1])


def _show(addr: Address) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


class UpstreamHandler:
    """Receives for one session from one upstream socket; ignored once the session moved."""

    __slots__ = ("relay", "session")

    def __init__(self, relay: UDPRelay, session: UDPSession) -> None:
        self.relay = relay
        self.session = session

    def datagram(self, data: bytes) -> None:
        if self.session.upstream is self:
            self.relay._reply(self.session, data)

    def unreachable(self, why: str) -> None:
        session = self.session
        if session.upstream is self and session.backend is not None:
            self.relay._backend_failed(session, session.backend, why)


class UDPRelay:
    """The UDP balancer's core: the session table and the datagrams' way through it."""

    def __init__(
        self,
        clock: IReactorTime,
        balancer: Balancer,
        open_link: Opener,
        resolver: HostResolver,
        capacity: int = 2048,
        idle: float = 30.0,
        connlog: ConnectionLog | None = None,
        admit: Callable[[ClientInfo], bool] | None = None,
        resend: int = RESEND_COUNT,
    ) -> None:
        """
        @param admit: the client ACL: a new client it refuses gets no session (its datagrams
            are dropped and counted as denied).
        @param resend: on a move, send at most this many unanswered datagrams of the last
            L{RESEND_WINDOW} seconds again, if the old backend ever replied (0: never).
        """
        if resend < 0:
            raise ValueError(f"the resend count must be >= 0, got {resend}")
        self._clock = clock
        self._admit = admit
        self.balancer = balancer
        self._open = open_link
        self._resolver = resolver
        self.connlog = connlog if connlog is not None else ConnectionLog()
        self.table: UDPSessionTable[UDPSession] = UDPSessionTable(
            clock, capacity, idle, self._table_ended
        )
        self.resend = resend
        self.front: FrontTransport | None = None
        self.stats = UDPStats()
        self._told_no_backend = False
        # What the status views read of a relay (penbal.runtime.ConnectionSource):
        # the live sessions are its live "connections", the sessions started its "accepted".
        self.fronts: UDPSessionTable[UDPSession] = self.table
        self.accepted = 0

    def udp_figures(self) -> dict[str, int]:
        """The front side's figures for the status views (L{penbal.status.snapshot.UDPStatus})."""
        stats = self.stats
        return {
            "sessions_active": len(self.table),
            "sessions_max": self.table.capacity,
            "sessions": stats.sessions,
            "datagrams_in": stats.datagrams_in,
            "datagrams_out": stats.datagrams_out,
            "moved": stats.moved,
            "resent": stats.resent,
            "evicted": self.table.evicted,
            "expired": self.table.expired,
            "no_backend": stats.no_backend,
            "dropped": stats.dropped,
            "denied": stats.denied,
        }

    def attach(self, front: FrontTransport) -> None:
        """Replies go out through C{front}."""
        self.front = front

    def received(self, data: bytes, addr: Address, local: str | None) -> None:
        """A datagram from a client (the front socket's callback)."""
        self.stats.datagrams_in += 1
        key = addr[:2]
        session = self.table.get(key)
        if session is None:
            session = self._start(key, addr, local)
            if session is None:
                return
        else:
            self.table.touch(key)
            session.local = local
        session.bytes_in += len(data)
        self._forward(session, data)

    def move_off(self, backend: Backend, why: str) -> None:
        """Move every session of C{backend} elsewhere (it is gone, unfit or set down)."""
        for session in [s for s in backend.live if isinstance(s, UDPSession)]:
            self._move(session, backend, why)

    def stop(self) -> None:
        """End every session (the service stops)."""
        for session in self.table.sessions():
            self.end(session, "stopped")
        self.table.stop()

    def _start(self, key: Hashable, addr: Address, local: str | None) -> UDPSession | None:
        client = client_of(addr)
        if self._admit is not None and not self._admit(client):
            self.stats.denied += 1
            return None
        order = self.balancer.order(client)
        backend = order[0] if order else self.balancer.settings.emergency
        if backend is None:
            self.stats.no_backend += 1
            if not self._told_no_backend:
                self._told_no_backend = True
                log.warn("no UDP backend available: dropping datagrams from new clients")
            return None
        self._told_no_backend = False
        session = UDPSession(self.end, key, addr, local, client, self._clock.seconds())
        self.table.add(key, session)
        self.stats.sessions += 1
        self.accepted += 1
        self._attach(session, backend)
        return None if session.ended else session

    def _attach(self, session: UDPSession, backend: Backend) -> None:
        session.backend = session.last = backend
        counters = backend.counters
        counters.total += 1
        backend.live.add(session)  # its active count (see penbal.backend.Counters)
        self.balancer.connected(session.client, backend)
        address = self._resolver.known(backend.spec.host)
        if address is not None:
            self._connect(session, backend, address)
            return
        session.waiting = []
        lookup = self._resolver.resolve(backend.spec.host)
        lookup.addCallbacks(
            self._resolved,
            self._not_resolved,
            callbackArgs=(session, backend),
            errbackArgs=(session, backend),
        )

    def _resolved(self, address: str, session: UDPSession, backend: Backend) -> None:
        if session.backend is backend and session.link is None and session.ended is None:
            self._connect(session, backend, address)

    def _not_resolved(self, reason: Failure, session: UDPSession, backend: Backend) -> None:
        if session.backend is backend and session.link is None and session.ended is None:
            why = f"cannot resolve {backend.spec.host}: {reason.getErrorMessage()}"
            self._backend_failed(session, backend, why)

    def _connect(self, session: UDPSession, backend: Backend, address: str) -> None:
        upstream = UpstreamHandler(self, session)
        session.upstream = upstream
        try:
            link = self._open(address, backend.spec.port, upstream)
        except BackendUnreachableError as e:
            self._backend_failed(session, backend, str(e))
            return
        except OSError as e:
            log.warn("cannot open a UDP socket for {client}: {error}",
                     client=_show(session.addr), error=e.strerror or str(e))
            self.end(session, "no socket")
            return
        session.link = link
        waiting, session.waiting = session.waiting, None
        for data in waiting or ():
            self._forward(session, data)

    def _forward(self, session: UDPSession, data: bytes) -> None:
        if session.link is not None:
            self._send(session, data)
        elif session.waiting is not None and len(session.waiting) < WAITING_LIMIT:
            session.waiting.append(data)
        else:
            self.stats.dropped += 1

    def _send(self, session: UDPSession, data: bytes) -> None:
        link, backend = session.link, session.backend
        assert link is not None and backend is not None
        try:
            sent = link.send(data)
        except BackendUnreachableError as e:
            # Refused before it left (an earlier datagram drew an ICMP error): it was never
            # sent, so it goes to the next backend whatever the resend rule says.
            session.waiting = [data]
            self._backend_failed(session, backend, str(e))
            return
        if not sent:
            self.stats.dropped += 1
            return
        counters = backend.counters
        counters.datagrams_to_backend += 1
        counters.bytes_to_backend += len(data)
        if self.resend:
            session.recent.record(self._clock.seconds(), data, self.resend)

    def _reply(self, session: UDPSession, data: bytes) -> None:
        backend = session.backend
        assert backend is not None and self.front is not None
        counters = backend.counters
        counters.datagrams_from_backend += 1
        counters.bytes_from_backend += len(data)
        if self.front.send(data, session.addr, session.local):
            self.stats.datagrams_out += 1
            session.bytes_out += len(data)
        else:
            self.stats.dropped += 1
        if session.recent:
            session.recent.clear()
        session.tried.clear()
        self.table.touch(session.key)

    def _backend_failed(self, session: UDPSession, backend: Backend, why: str) -> None:
        """C{backend} did not take C{session}'s datagrams: blacklist it, move its sessions."""
        settings = self.balancer.settings
        now = self._clock.seconds()
        if backend is settings.emergency:
            backend.counters.failures += 1
            log.warn("UDP emergency server {backend} failed ({why})",
                     backend=backend.address, why=why)
        elif not backend.is_blacklisted(now):
            backend.blacklist(now, settings.blacklist, why)
            log.warn("UDP backend {backend} failed ({why}): blacklisted for {seconds}s",
                     backend=backend.address, why=why, seconds=settings.blacklist)
        session.tried.add(backend)
        self.move_off(backend, why)

    def _move(self, session: UDPSession, old: Backend, why: str) -> None:
        if session.backend is not old or session.ended is not None:
            return
        again = self._unanswered(session, old)
        resent = len(again)
        again += session.waiting or []  # never sent (a name being resolved, a refused send)
        session.recent.clear()
        self._detach(session)
        settings = self.balancer.settings
        if settings.stubborn:
            self.end(session, "backend failed (stubborn)")
            return
        tried = session.tried
        tried.add(old)
        order = [b for b in self.balancer.order(session.client) if b not in tried]
        backend = order[0] if order else settings.emergency
        if backend is None or backend in tried:
            self.stats.no_backend += len(again)
            self.end(session, "no backend")
            return
        self.stats.moved += 1
        self._attach(session, backend)
        for number, data in enumerate(again):
            if session.ended is not None:
                break
            if number < resent:
                self.stats.resent += 1
            self._forward(session, data)

    def _unanswered(self, session: UDPSession, old: Backend) -> list[bytes]:
        """What C{session} sent to C{old} lately without a reply, if worth sending again.

        Only a backend that has replied before is taken for a request/reply service, whose
        unanswered datagrams were most likely lost with it; a backend that never replies may
        have received them, and sending them again would deliver them twice.
        """
        if not session.recent or old.counters.datagrams_from_backend == 0:
            return []
        return session.recent.within_window(self._clock.seconds())

    def _detach(self, session: UDPSession) -> None:
        """Close the session's socket and take it off its backend."""
        if session.link is not None:
            session.link.close()
            session.link = None
        session.upstream = None
        session.waiting = None
        backend = session.backend
        if backend is not None:
            session.backend = None
            backend.live.discard(session)
            self.balancer.pool.released(backend)  # a retiring backend leaves once unused

    def end(self, session: UDPSession, why: str) -> None:
        """End a session now (it leaves the table, its socket closes, it is logged)."""
        if self.table.get(session.key) is session:
            self.table.remove(session.key)
        self._finish(session, why)

    def _table_ended(self, session: UDPSession, why: str) -> None:
        self._finish(session, why)

    def _finish(self, session: UDPSession, why: str) -> None:
        if session.ended is not None:
            return
        backend = session.last
        self._detach(session)
        session.ended = why
        now = self._clock.seconds()
        self.connlog.ended(
            ConnectionRecord(
                client=_show(session.addr),
                backend=backend.address if backend is not None else "-",
                bytes_in=session.bytes_in,
                bytes_out=session.bytes_out,
                started=session.started,
                duration=now - session.started,
                ended_by=why if why != IDLE else "idle timeout",
                clean=why in (IDLE, "stopped"),
            )
        )
