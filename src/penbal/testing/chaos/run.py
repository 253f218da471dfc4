# -*- test-case-name: tests.galera.test_chaos -*-
"""
One chaos run: a real C{twist penbal --check galera} in front of a running 3-node cluster,
clients working through it, a writer on one node, pollers reading every node directly, and
the fault loop; then the counts per fault kind and the goals they miss.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import penbal.testing.chaos.bank as bank
from penbal.testing.chaos.clients import Client, Login, VersionWriter
from penbal.testing.chaos.faults import FAULTS, FaultContext, FaultDeck, heal
from penbal.testing.chaos.fitness import FitTimeline, health_events
from penbal.testing.chaos.journal import FaultSpan, Journal
from penbal.testing.chaos.tally import Tally
from penbal.testing.galera_cluster import GaleraCluster
from penbal.testing.galera_poller import Poller
from penbal.testing.process import PenbalProcess, free_port

#: The balancer's check settings (those of the failover tests): out within fall * interval +
#: timeout = 1.5 s, back after rise good checks.
CHECK_OPTIONS = ("--check", "galera", "--check-interval", "0.5", "--check-timeout", "0.5",
                 "--rise", "3", "--fall", "2")
#: Connections to a node turned unfit are closed (a client kept on a frozen node would read
#: stale rows once it resumes); a node that does not greet within 1 s is failed over.
RELAY_OPTIONS = ("--on-unfit", "close", "-t", "1", "--policy", "roundrobin")
#: The queue's default with --check galera (issue 17).
QUEUE_TIMEOUT = 2.0
#: Bounds: traffic must reach every node this long after a fault is undone.
RECOVERY_BOUND = 60.0


@dataclass
class Settings:
    """What a run does; the defaults are the issue's."""

    seconds: float = 120.0
    seed: int = 17
    clients: int = 16
    kinds: Sequence[str] = tuple(FAULTS)
    hold: tuple[float, float] = (2.0, 10.0)
    gap: tuple[float, float] = (1.0, 3.0)
    extra_options: Sequence[str] = ()
    #: Go on past the deadline until every kind has run once (the first round of the deck).
    every_kind: bool = False
    log_dir: str | None = None


@dataclass
class Outcome:
    """What a run found."""

    tally: Tally
    faults: list[FaultSpan]
    queue_timeout: float
    final_totals: dict[int, int]
    penbal_log: Path
    writer_errors: int
    seconds: float
    problems: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        out = list(self.problems) + self.tally.violations()
        out += [f"node{i} holds a total of {v}, not {bank.TOTAL}"
                for i, v in self.final_totals.items() if v != bank.TOTAL]
        return out


class ChaosRun:
    """One run against C{cluster} (three nodes, running and Synced)."""

    def __init__(self, cluster: GaleraCluster, credentials: str, settings: Settings,
                 clock: Callable[[], float] = time.time,
                 progress: Callable[[str], None] = lambda line: None) -> None:
        self.cluster = cluster
        self.credentials = credentials
        self.settings = settings
        self.clock = clock
        self.progress = progress
        self.rng = random.Random(settings.seed)
        self.journal = Journal()
        self.stop = threading.Event()
        self.nodes = list(range(1, cluster.nodes + 1))

    def login(self, port: int) -> Login:
        return Login("127.0.0.1", port, self.cluster.app_user, self.cluster.app_password,
                     self.cluster.database)

    def sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def run(self) -> Outcome:
        s = self.settings
        queue = QUEUE_TIMEOUT
        bank.create_tables(self.cluster)
        port = free_port()
        addresses = {i: f"127.0.0.1:{self.cluster.node_port(i)}" for i in self.nodes}
        options = [*CHECK_OPTIONS, "--check-credentials", self.credentials, *RELAY_OPTIONS,
                   *(["--queue-timeout", str(queue)] if queue else []), *s.extra_options]
        penbal = PenbalProcess([*options, f"127.0.0.1:{port}", *addresses.values()],
                               listen_port=port, probe=False, log_dir=s.log_dir)
        bound = s.seconds + 600
        poller = Poller({i: self.cluster.node_port(i) for i in self.nodes},
                        self.cluster.check_user, self.cluster.check_password, period=0.2,
                        timeout=0.5, max_seconds=bound)
        began = self.clock()
        ends = began + bound
        writer = VersionWriter([self.login(self.cluster.node_port(i)) for i in self.nodes],
                               self.journal, self.clock, self.stop, ends)
        threads: list[threading.Thread] = [writer, *(
            Client(self.login(port), self.journal, random.Random(self.rng.random()),
                   self.clock, self.stop, ends) for _ in range(s.clients))]
        problems: list[str] = []
        poller.start()
        try:
            for thread in threads:
                thread.start()
            if self.wait_full_traffic(began) is None:
                problems.append("traffic never reached every node before the first fault")
            else:
                self.fault_loop(self.clock() + s.seconds, problems)
            self.sleep(2.0)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(30)
            observations = poller.stop()
            penbal.stop()
        elapsed = self.clock() - began
        timeline = FitTimeline.build(health_events(penbal.log()), addresses, observations,
                                     began - 60, self.clock())
        tally = Tally(list(s.kinds), queue, timeline).count(
            self.journal.faults, self.journal.connects, self.journal.transactions,
            self.journal.commits)
        totals = {i: int(self.cluster.sql(i, f"SELECT SUM(balance) FROM "
                                             f"{self.cluster.database}.chaos_accounts")[0][0]
                         or 0) for i in self.nodes}
        return Outcome(tally, list(self.journal.faults), queue, totals, penbal.log_path,
                       writer.errors, elapsed, problems)

    def wait_full_traffic(self, since: float) -> float | None:
        """When new transactions through the balancer had reached every node after C{since}."""
        names = {f"node{i}" for i in self.nodes}
        deadline = since + RECOVERY_BOUND
        while self.clock() < deadline and not self.stop.is_set():
            first = self.journal.first_served(since)
            if names <= set(first):
                return max(first[name] for name in names)
            self.sleep(0.1)
        return None

    def fault_loop(self, deadline: float, problems: list[str]) -> None:
        """Inject faults, one at a time, until C{deadline}; each one undone before the next."""
        s = self.settings
        deck = FaultDeck(self.rng, list(s.kinds))
        context = FaultContext(self.cluster, self.rng, self.clock, self.sleep, s.hold)
        drawn = 0
        while not self.stop.is_set() and (
                self.clock() < deadline or (s.every_kind and drawn < len(deck.kinds))):
            kind = deck.draw()
            drawn += 1
            injected = self.clock()
            try:
                span = FAULTS[kind](context)
            except Exception as e:
                span = FaultSpan(kind, tuple(self.nodes), injected, note=f"failed: {e!r}")
                problems.append(f"{kind} could not be injected or undone: {e!r}")
                heal(self.cluster)
            span.undone = self.clock()
            self.journal.fault(span)
            span.recovered = self.wait_full_traffic(span.undone)
            self.progress(f"{kind} on {span.nodes} {span.note}: undone after"
                          f" {span.undone - span.injected:.1f}s, full traffic "
                          + (f"after {span.recovered - span.undone:.1f}s"
                             if span.recovered is not None else "never"))
            self.sleep(self.rng.uniform(*s.gap))
