# -*- test-case-name: tests.galera.test_failover -*-
"""
Watching a scenario from outside penbal: clients that open new connections through penbal in a
loop and ask each one C{SELECT @@port} (which node it reached), and pollers that read each
node's wsrep state directly, as the check user, to know when a node really became (un)fit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pymysql

from penbal.backend import Fitness
from penbal.health.fitness import galera_verdict
from penbal.health.partition import majority_cluster, newest_ids, partition_verdict
from penbal.health.result import Verdict
from penbal.testing.galera_poller import Observation


@dataclass(frozen=True)
class Sample:
    """One client connection through penbal: when it started, when the node's greeting and
    login were done (penbal had chosen the node by then; a client held while no node is fit
    is sent on only when one is), when it ended, the node's port."""

    start: float
    end: float
    port: int | None
    error: str = ""
    connected: float = 0.0


class Traffic:
    """C{threads} clients, each opening one new connection after another through penbal."""

    def __init__(self, port: int, user: str, password: str, threads: int = 4,
                 timeout: float = 2.0, pause: float = 0.005, max_seconds: float = 180.0,
                 max_samples: int = 200_000) -> None:
        self.port = port
        self.user = user
        self.password = password
        self.timeout = timeout
        self.pause = pause
        self.max_seconds = max_seconds
        self.max_samples = max_samples
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Sample]:
        """Stop the clients (each finishes its connection) and return every sample."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout * 3 + 5)
        return self.samples()

    def samples(self) -> list[Sample]:
        with self._lock:
            return sorted(self._samples, key=lambda s: s.start)

    def _run(self) -> None:
        ends = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < ends:
            sample = self.one()
            with self._lock:
                self._samples.append(sample)
                if len(self._samples) >= self.max_samples:
                    return
            self._stop.wait(self.pause)

    def one(self) -> Sample:
        """Connect through penbal, ask which node answered, disconnect."""
        started = time.monotonic()
        try:
            connection = pymysql.connect(
                host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                connect_timeout=self.timeout, read_timeout=self.timeout,
                write_timeout=self.timeout)
            connected = time.monotonic()
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT @@port")
                    row = cursor.fetchone()
            finally:
                connection.close()
        except Exception as e:
            return Sample(started, time.monotonic(), None, f"{type(e).__name__}: {e}")
        return Sample(started, time.monotonic(), int(row[0]), connected=connected)

    def wait_for(self, condition: Callable[[list[Sample]], bool], timeout: float,
                 what: str) -> list[Sample]:
        """Poll the samples until C{condition} holds; fail naming C{what} after C{timeout}."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.samples()
            if condition(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)


def verdicts(observations: Sequence[Observation], node: int) -> list[tuple[Observation, Verdict]]:
    """Each observation of C{node} with the verdict penbal's rules give it, the cluster view
    taken from the latest observation of every node at that moment."""
    latest: dict[int, Observation] = {}
    out: list[tuple[Observation, Verdict]] = []
    for observation in observations:
        latest[observation.node] = observation
        if observation.node != node:
            continue
        everything = [o.result() for o in latest.values()]
        verdict = galera_verdict(observation.result())
        verdict = partition_verdict(verdict, observation.result(), newest_ids(everything),
                                    majority_cluster(everything))
        out.append((observation, verdict))
    return out


def judged(observations: Sequence[Observation], node: int) -> list[tuple[Observation, Fitness]]:
    """Each observation of C{node} with the fitness penbal's rules give it."""
    return [(o, verdict.fitness) for o, verdict in verdicts(observations, node)]


def last_bad_before(observations: Sequence[Observation], node: int, when: float,
                    lasting: float = 0.0) -> float:
    """The start of the last direct read, before C{when}, that found C{node} not fit, in a run
    of such reads that lasted at least C{lasting} seconds.  The poller reads every node 25
    times a second; a state shorter than the check interval can fall between two of penbal's
    checks, and no hysteresis can be held to what its checks never saw."""
    starts: list[float] = []
    run: list[float] = []
    for o, fitness in judged(observations, node):
        if o.start >= when:
            break
        if fitness is Fitness.FIT:
            run = []
            continue
        run.append(o.start)
        if run[-1] - run[0] >= lasting:
            starts.append(o.start)
    if not starts:
        raise AssertionError(f"node {node} was never seen unfit before {when}")
    return max(starts)


def fitness_runs(observations: Sequence[Observation], node: int, start: float,
                 end: float) -> str:
    """The runs of reads of C{node} between C{start} and C{end} with the same verdict, one per
    line, as C{"unfit 12.340-12.900 x14: not ready (wsrep_ready=OFF)"}: what the poller saw,
    for a failure message."""
    runs: list[tuple[Verdict, float, float, int]] = []
    for o, verdict in verdicts(observations, node):
        if not start <= o.start < end:
            continue
        if runs and runs[-1][0] == verdict:
            runs[-1] = (verdict, runs[-1][1], o.start, runs[-1][3] + 1)
        else:
            runs.append((verdict, o.start, o.start, 1))
    return "\n".join(f"{v.fitness.name.lower()} {a:.3f}-{b:.3f} x{n}: {v.reason}"
                     for v, a, b, n in runs)


def first_good_after(observations: Sequence[Observation], node: int, when: float) -> float:
    """The end of the first direct read, after C{when}, that found C{node} fit."""
    for o, fitness in judged(observations, node):
        if o.start >= when and fitness is Fitness.FIT:
            return o.end
    raise AssertionError(f"node {node} was never seen fit after {when}")


def last_primary(observations: Sequence[Observation], node: int, before: float) -> float:
    """The start of the last read, before the first non-Primary one after C{before}, that found
    C{node} Primary: a lower bound of when it left the Primary component."""
    last = before
    for o in observations:
        if o.node != node or o.start < before or o.error:
            continue
        if o.values.get("wsrep_cluster_status") != "Primary":
            return last
        last = o.start
    raise AssertionError(f"node {node} never left the Primary component after {before}")


def last_fit(observations: Sequence[Observation], node: int, before: float) -> float:
    """The start of the last read, before the first one after C{before} that penbal's rules
    judge not fit (a failed read included), that found C{node} fit: a lower bound of when it
    stopped being fit, whichever wsrep value changed first."""
    last = before
    for o, fitness in judged(observations, node):
        if o.start < before:
            continue
        if fitness is not Fitness.FIT:
            return last
        last = o.start
    raise AssertionError(f"node {node} was never seen unfit after {before}")


def to_port(samples: Sequence[Sample], port: int) -> list[Sample]:
    """The samples that reached the node on C{port}."""
    return [s for s in samples if s.port == port]


def failures(samples: Sequence[Sample]) -> list[Sample]:
    """The samples that failed."""
    return [s for s in samples if s.port is None]
