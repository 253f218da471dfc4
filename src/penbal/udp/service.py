# -*- test-case-name: tests.udp.test_service -*-
"""
The UDP balancer as a Twisted service (C{twist penbal --udp}): bind on start, probe backends
if asked, end every session on stop.
"""

from __future__ import annotations

import resource
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from penbal.balancer import Balancer
from penbal.connlog import ConnectionLog
from penbal.service import StartupError, install_stop_signals
from penbal.udp.listen import UDPListenSpec
from penbal.udp.probe import UDPCheckSpec, UDPProbe
from penbal.udp.relay import RESEND_COUNT, UDPRelay
from penbal.udp.resolve import HostResolver
from penbal.udp.sockets import FrontSocket, open_upstream

log = Logger()


class UDPBalancerService(Service):
    """Receive on one UDP address and relay every client through a L{UDPRelay}."""

    def __init__(
        self,
        reactor: Any,
        listen: UDPListenSpec,
        relay: UDPRelay,
        probe: UDPProbe | None = None,
    ) -> None:
        self._reactor = reactor
        self._listen = listen
        self.relay = relay
        self.probe = probe
        self.front: FrontSocket | None = None

    def privilegedStartService(self) -> None:
        self._bind()
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        self.start_relaying()
        install_stop_signals(self._reactor)

    def start_relaying(self) -> None:
        """Bind if not yet done, read datagrams, start the probe (L{startService} minus signals)."""
        self._bind()
        assert self.front is not None
        self.front.start_reading()
        if self.probe is not None:
            self.probe.start()

    def _bind(self) -> None:
        if self.front is not None:
            return
        listen = self._listen
        try:
            front = FrontSocket(self._reactor, listen.interface, listen.port or 0,
                                self.relay.received)
        except OSError as e:
            raise StartupError(
                f"cannot listen on {listen.endpoint!r}: {e.strerror or e}"
            ) from None
        self.front = front
        self.relay.attach(front)
        host, port = front.address()
        log.info("penbal balancing UDP on {host}:{port}", host=host, port=port)

    def stopService(self) -> Deferred[None]:
        """Stop probing, end every session, close the front socket."""
        super().stopService()
        if self.probe is not None:
            self.probe.stop()
        self.relay.stop()
        if self.front is not None:
            self.front.close()
            self.front = None
        return succeed(None)


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft limit on open files towards C{wanted} (one socket per session)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warn("only {soft} open files allowed; {wanted} UDP sessions need about {wanted}",
                 soft=soft, wanted=wanted)
    return int(soft)


def make_udp_service(
    reactor: Any,
    options: Any,
    balancer: Balancer,
    connlog: ConnectionLog | None = None,
    edges: Any = None,
) -> UDPBalancerService:
    """
    Assemble the UDP balancer from C{twist penbal --udp} options (called by penbal.tap).

    @param connlog: where ended sessions are logged and kept for the status page.
    @param edges: the TCP side's edge features, if any: their client ACL applies to new UDP
        clients too.
    """
    listen = options.listen_spec
    assert isinstance(listen, UDPListenSpec)
    capacity = int(options.get("clients") or 2048)
    raise_open_file_limit(capacity + 256)
    resolver = HostResolver(reactor.nameResolver, reactor)
    opener = open_upstream(reactor)
    resend = options.get("udp-resend")
    relay = UDPRelay(reactor, balancer, opener, resolver, capacity=capacity,
                     idle=float(options["udp-idle"]), connlog=connlog,
                     admit=edges.permits if edges is not None else None,
                     resend=RESEND_COUNT if resend is None else int(resend))
    probe = None
    check: UDPCheckSpec | None = options.get("udp-check")
    if check is not None:
        probe = UDPProbe(reactor, balancer.pool, check, opener, resolver,
                         interval=float(options["udp-check-interval"]),
                         timeout=float(options["udp-check-timeout"]),
                         on_unfit=relay.move_off)
    return UDPBalancerService(reactor, listen, relay, probe)
