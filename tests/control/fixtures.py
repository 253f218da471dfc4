# -*- test-case-name: tests.control -*-
"""
A L{Runtime} over a memory clock and real relay objects, for the operations' unit tests.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.testing import MemoryReactorClock

from penbal.address import parse_backend
from penbal.balancer import Balancer, Settings
from penbal.config.reconcile import capture
from penbal.connlog import ConnectionLog
from penbal.edges.gate import Edges
from penbal.interfaces import PolicyContext
from penbal.policies.choice import PolicyChoice
from penbal.policies.registry import make_policy
from penbal.relay.listener import RelayFactory
from penbal.runtime import Runtime
from tests.relay.fixtures import RelayHarness

BACKENDS = ("127.0.0.1:4000", "127.0.0.1:4001")


def make_runtime(
    backends: tuple[str, ...] = BACKENDS, policy: str = "sticky"
) -> tuple[Runtime, RelayHarness]:
    """A runtime whose balancer also drives a relay harness (so connections can be made)."""
    harness = RelayHarness(backends=0)
    clock: MemoryReactorClock = harness.reactor
    clock.advance(1000)
    for text in backends:
        harness.pool.add(parse_backend(text, None))
    context = PolicyContext(clock=clock, random=random.Random(1))
    choice = PolicyChoice(policy)
    balancer = Balancer(harness.pool, make_policy(choice, context), Settings())
    harness.balancer = balancer
    harness.settings = balancer.settings
    harness.factory = RelayFactory(clock, clock, balancer, ConnectionLog())
    harness.connlog = harness.factory.connlog
    harness.factory.attach(harness.port)
    runtime = Runtime(
        balancer=balancer,
        clock=clock,
        context=context,
        policy=choice,
        connlog=harness.connlog,
        relays=[harness.factory],
        started=clock.seconds(),
        pid=4242,
    )
    # As penbal.control.operations.make_runtime wires it: the relay checks the client ACL and
    # may add X-Forwarded-For (HTTP mode), both settable at run time.
    harness.factory.edges = Edges(clock, clock, acls=runtime.acls)
    runtime.base = capture(runtime).detached()
    runtime.endpoints["listen"] = "tcp:3306"
    return runtime, harness


def connect(harness: RelayHarness, host: str = "127.0.0.2", port: int = 5000) -> Any:
    """A client relayed to the backend the balancer chose; returns the front leg."""
    front, _ = harness.client(host, port)
    harness.connect_backend()
    return front
