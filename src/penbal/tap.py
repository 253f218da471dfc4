# -*- test-case-name: tests.test_tap -*-
"""
Assembly of C{twist penbal}: parsed options in, a running balancer service out.

This is the only module that touches the global reactor, randomness and the clock.
"""

from __future__ import annotations

import random

from twisted.application.service import IService, MultiService

from penbal.backend import Backend
from penbal.balancer import Balancer, Settings
from penbal.connlog import ConnectionLog
from penbal.interfaces import PolicyContext
from penbal.options import Options
from penbal.policies.registry import find_policies
from penbal.pool import BackendPool
from penbal.relay.listener import RelayFactory
from penbal.service import TCPBalancerService

__all__ = ["Options", "makeService"]


def makeService(options: Options) -> IService:
    """Assemble the balancer from parsed options (the only place with global collaborators)."""
    from twisted.internet import reactor

    assert options.listen_spec is not None
    pool = BackendPool(reactor, options.backend_specs)
    context = PolicyContext(clock=reactor, random=random.Random())
    policy = find_policies()[options["policy"]].makePolicy(context)
    settings = Settings(
        timeout=options["timeout"],
        blacklist=options["blacklist"],
        max_connections=options["max-connections"],
        stubborn=bool(options["stubborn"]),
        emergency=Backend(options.emergency_spec, -1) if options.emergency_spec else None,
    )
    balancer = Balancer(pool, policy, settings)
    factory = RelayFactory(reactor, reactor, balancer, ConnectionLog())
    top = MultiService()
    TCPBalancerService(reactor, options.listen_spec, factory).setServiceParent(top)
    return top
