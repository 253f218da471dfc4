# -*- test-case-name: tests.galera.test_failover -*-
"""
One scenario's moving parts: the shared cluster, a real C{twist penbal --check galera} in
front of it, clients through penbal, and direct pollers of every node.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.galera_poller import Poller
from penbal.testing.process import PenbalProcess, free_port
from tests.galera.cluster import NODES, credentials_file, restore, shared_cluster
from tests.galera.observe import Sample, Traffic

INTERVAL = 0.5
TIMEOUT = 0.5
FALL = 2
RISE = 3
# The bound: a node is out of new traffic at most this long after its fault.
BOUND = FALL * INTERVAL + TIMEOUT
# Re-admission needs RISE good checks in a row: at least (RISE - 1) intervals after the node
# was last seen unfit; SLACK covers the time a check takes to read the status.
SLACK = 0.15
# How far apart penbal's log times (wall clock) and the test's monotonic times may be once
# converted with the offset taken at a scenario's start (clock slewing, rounding).
CLOCKS = 0.05
CHECK_OPTIONS = (
    "--check", "galera",
    "--check-interval", str(INTERVAL), "--check-timeout", str(TIMEOUT),
    "--rise", str(RISE), "--fall", str(FALL),
)


def report(scenario: str, **figures: float | int | str) -> None:
    """Print a scenario's measured figures (they go to the test log)."""
    shown = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in figures.items())
    print(f"\n[galera] {scenario}: {shown}")


class Scenario:
    """The cluster with a penbal in front, clients and pollers running; cleaned up by C{test}."""

    def __init__(self, test: SynchronousTestCase, *options: str, policy: str = "roundrobin",
                 threads: int = 4, expect_all_nodes: bool = True) -> None:
        self.test = test
        #: Add to a monotonic time to get penbal's log time (wall clock).
        self.wall_offset = time.time() - time.monotonic()
        self.cluster = shared_cluster()
        restore(self.cluster)
        test.addCleanup(restore, self.cluster)
        self.ports = {i: self.cluster.node_port(i) for i in NODES}
        self.poller = Poller(self.ports, self.cluster.check_user, self.cluster.check_password)
        self.poller.start()
        test.addCleanup(self.poller.stop)
        self.penbal, self.port = self.start_penbal(*options, policy=policy)
        self.traffic = self.clients(self.port, threads)
        if expect_all_nodes:
            self.traffic.wait_for(
                lambda samples: {s.port for s in samples} >= set(self.ports.values()), 20,
                "new connections through penbal to reach every node")

    def start_penbal(self, *options: str, policy: str = "roundrobin",
                     order: Sequence[int] = NODES) -> tuple[PenbalProcess, int]:
        """A penbal process with the Galera check in front of the nodes, listed in C{order}."""
        port = free_port()
        backends = [f"127.0.0.1:{self.ports[i]}" for i in order]
        penbal = PenbalProcess(
            [*CHECK_OPTIONS, "--check-credentials", credentials_file(self.cluster),
             "--policy", policy, *options, f"127.0.0.1:{port}", *backends],
            listen_port=port)
        self.test.addCleanup(penbal.stop)
        return penbal, port

    def writer_ranking(self) -> list[int]:
        """The nodes by rising C{wsrep_local_index}, read from each node directly: the order in
        which galera-writer picks writers among nodes of equal PRIO."""
        return sorted(NODES, key=lambda i: int(self.cluster.status(i)["wsrep_local_index"]))

    def clients(self, port: int, threads: int) -> Traffic:
        """Clients opening new connections through penbal on C{port}, one after another."""
        traffic = Traffic(port, self.cluster.app_user, self.cluster.app_password, threads)
        traffic.start()
        self.test.addCleanup(traffic.stop)
        return traffic

    def wait_until(self, when: float) -> list[Sample]:
        """Let the clients run until C{when} (monotonic); their samples so far."""
        return self.traffic.wait_for(lambda s: time.monotonic() >= when, when - time.monotonic()
                                     + 5, f"time {when}")

    def health_events(self, penbal: PenbalProcess | None = None) -> list[dict[str, Any]]:
        """The health changes penbal logged, in order."""
        events = []
        for line in (penbal or self.penbal).log().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("penbal_event") == "health":
                events.append(event)
        return events

    def logged_change(self, node: int, fitness: str, after_wall: float) -> float:
        """When (wall clock) penbal logged node C{node} turning C{fitness} after C{after_wall}."""
        address = f"127.0.0.1:{self.ports[node]}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for event in self.health_events():
                if (event["backend"] == address and event["fitness"] == fitness
                        and event["log_time"] >= after_wall):
                    return float(event["log_time"])
            time.sleep(0.1)
        raise AssertionError(f"penbal never logged {address} as {fitness}")


def after(samples: Sequence[Sample], t: float) -> list[Sample]:
    """The samples that started at or after C{t}."""
    return [s for s in samples if s.start >= t]
