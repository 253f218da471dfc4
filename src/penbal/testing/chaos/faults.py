# -*- test-case-name: tests.testing.chaos.test_faults -*-
"""
The faults a chaos run injects into the real cluster, each bounded in time and undone before
the next: a node killed and restarted, frozen and resumed, desynced, rejecting queries, two
nodes down (the third loses quorum), and the whole cluster restarted from its last node.

A fault is done when the harness sees every node Synced in one configuration again; the
fault loop (L{FaultLoop}) picks the kinds in a random order, each kind once per round.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from penbal.testing.chaos.journal import FaultSpan
from penbal.testing.galera_cluster import GaleraCluster, SQLError

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass
class FaultContext:
    """What every fault uses: the cluster, the run's random generator, its clock and sleep,
    and how long a fault that is held (freeze, desync, reject) lasts, in seconds."""

    cluster: GaleraCluster
    rng: random.Random
    clock: Clock
    sleep: Sleep
    hold: tuple[float, float] = (2.0, 10.0)

    @property
    def nodes(self) -> list[int]:
        return list(range(1, self.cluster.nodes + 1))

    def held(self) -> float:
        seconds = self.rng.uniform(*self.hold)
        self.sleep(seconds)
        return seconds


def kill_and_restart(ctx: FaultContext) -> FaultSpan:
    """kill -9 one node, then restart it (--wsrep-recover, IST) once the others dropped it."""
    node = ctx.rng.choice(ctx.nodes)
    span = FaultSpan("kill9", (node,), ctx.clock())
    ctx.cluster.kill9(node)
    ctx.cluster.restart(node, timeout=120)
    return span


def freeze_and_thaw(ctx: FaultContext) -> FaultSpan:
    """SIGSTOP one node, SIGCONT it 2-10 s later, wait until it really rejoined."""
    node = ctx.rng.choice(ctx.nodes)
    span = FaultSpan("freeze", (node,), ctx.clock())
    ctx.cluster.freeze(node)
    try:
        span.note = f"{ctx.held():.1f}s"
    finally:
        ctx.cluster.thaw(node)
    ctx.cluster.wait_rejoined(node, timeout=60)
    return span


def desync(ctx: FaultContext) -> FaultSpan:
    """wsrep_desync=ON on one node for 2-10 s."""
    node = ctx.rng.choice(ctx.nodes)
    span = FaultSpan("desync", (node,), ctx.clock())
    ctx.cluster.desync(node, True)
    try:
        span.note = f"{ctx.held():.1f}s"
    finally:
        ctx.cluster.desync(node, False)
    return span


def reject_queries(ctx: FaultContext) -> FaultSpan:
    """wsrep_reject_queries=ALL on one node for 2-10 s."""
    node = ctx.rng.choice(ctx.nodes)
    span = FaultSpan("reject", (node,), ctx.clock())
    ctx.cluster.reject_queries(node, "ALL")
    try:
        span.note = f"{ctx.held():.1f}s"
    finally:
        ctx.cluster.reject_queries(node, "NONE")
    return span


def two_down(ctx: FaultContext) -> FaultSpan:
    """
    kill -9 two nodes: the third loses quorum (non-Primary).  After 2-10 s it is bootstrapped
    as the Primary component and the two others restart and rejoin it.  Every node is hit:
    two are down, the survivor refuses table access.
    """
    survivor = ctx.rng.choice(ctx.nodes)
    down = [i for i in ctx.nodes if i != survivor]
    span = FaultSpan("two-down", tuple(ctx.nodes), ctx.clock(), note=f"node{survivor} left")
    for i in down:
        ctx.cluster.kill9(i)
    ctx.cluster.wait_state(survivor, lambda s: s.get("wsrep_cluster_status") != "Primary",
                           timeout=30)
    ctx.held()
    ctx.cluster.bootstrap(survivor)
    for i in down:
        ctx.cluster.restart(i, timeout=120)
    return span


def cluster_restart(ctx: FaultContext) -> FaultSpan:
    """Stop every node cleanly in a random order, bring the cluster back from the last one."""
    order = ctx.nodes
    ctx.rng.shuffle(order)
    span = FaultSpan("cluster-restart", tuple(ctx.nodes), ctx.clock(),
                     note="stopped " + ",".join(map(str, order)))
    ctx.cluster.restart_cluster(order, timeout=240)
    return span


#: Every fault kind, by the name the report uses.
FAULTS: dict[str, Callable[[FaultContext], FaultSpan]] = {
    "kill9": kill_and_restart,
    "freeze": freeze_and_thaw,
    "desync": desync,
    "reject": reject_queries,
    "two-down": two_down,
    "cluster-restart": cluster_restart,
}

#: What each kind does, for the report.
DESCRIPTIONS = {
    "kill9": "kill -9 one node, restart it (wsrep-recover, IST)",
    "freeze": "SIGSTOP one node, SIGCONT after 2-10 s",
    "desync": "wsrep_desync=ON on one node for 2-10 s",
    "reject": "wsrep_reject_queries=ALL on one node for 2-10 s",
    "two-down": "kill -9 two nodes (the third goes non-Primary), bootstrap it, restart them",
    "cluster-restart": "stop all three nodes, bootstrap from the last stopped, start the others",
}


class FaultDeck:
    """The kinds in a random order, each once per round, reshuffled when a round ends."""

    def __init__(self, rng: random.Random, kinds: list[str] | None = None) -> None:
        self.rng = rng
        self.kinds = list(kinds or FAULTS)
        unknown = [k for k in self.kinds if k not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}: choose among {list(FAULTS)}")
        self._left: list[str] = []

    def draw(self) -> str:
        if not self._left:
            self._left = list(self.kinds)
            self.rng.shuffle(self._left)
        return self._left.pop()


def heal(cluster: GaleraCluster, timeout: float = 180.0) -> None:
    """
    Bring the cluster back to every node Synced in one configuration, whatever a failed
    fault left: frozen nodes resumed, desync and reject_queries off, a lone non-Primary
    survivor bootstrapped, stopped nodes restarted.
    """
    nodes = list(range(1, cluster.nodes + 1))
    running = [i for i in nodes if cluster.is_running(i)]
    if not running:
        raise RuntimeError("no Galera node runs any more: cannot heal the cluster")
    for i in running:
        cluster.thaw(i)
        with contextlib.suppress(SQLError, TimeoutError):
            cluster.desync(i, False, timeout=30)
        with contextlib.suppress(SQLError):
            cluster.reject_queries(i, "NONE")
    primary = []
    for i in running:
        with contextlib.suppress(SQLError):
            if cluster.status(i).get("wsrep_cluster_status") == "Primary":
                primary.append(i)
    if not primary:
        cluster.bootstrap(running[0])
    for i in nodes:
        if not cluster.is_running(i):
            cluster.restart(i, timeout=timeout)
    for i in nodes:
        cluster.wait_rejoined(i, timeout=timeout)
