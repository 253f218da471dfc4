# -*- test-case-name: tests.workers.test_supervisor -*-
"""
Tests of the main process's worker group, on a memory reactor: who is started with what,
what is pushed when, how a dead worker is replaced, how all stop.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState
from penbal.workers.sockets import TCPListenAddress
from penbal.workers.supervisor import (
    CHANNEL_FD,
    LISTEN_FD,
    PUSH_INTERVAL,
    RETRY_DELAY,
    STEADY,
    WorkerGroup,
)
from tests.control.fixtures import make_runtime


class FakeProcess:
    """A spawned worker: its pid and the signals it was sent."""

    def __init__(self, pid: int, args: list[str], child_fds: dict[int, Any]) -> None:
        self.pid = pid
        self.args = args
        self.child_fds = child_fds
        self.signals: list[str] = []

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)


class DescriptorTransport(StringTransport):
    """A unix transport: the descriptors sent along."""

    def __init__(self) -> None:
        super().__init__()
        self.descriptors: list[int] = []

    def sendFileDescriptor(self, fd: int) -> None:
        self.descriptors.append(fd)


class WorkersReactor(MemoryReactorClock):
    """Spawns fake processes; adopted channels connect to string transports."""

    def __init__(self) -> None:
        super().__init__()
        self.processes: list[tuple[FakeProcess, Any]] = []
        self.links: list[Any] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], env: Any = None,
                     childFDs: Any = None, **kw: Any) -> FakeProcess:
        process = FakeProcess(1000 + len(self.processes), args, dict(childFDs))
        self.processes.append((process, protocol))
        return process

    def adoptStreamConnection(self, fileDescriptor: int, addressFamily: int,
                              factory: Any) -> None:
        link = factory.buildProtocol(None)
        link.makeConnection(DescriptorTransport())
        self.links.append(link)


def command(listening: bool) -> list[str]:
    return ["/py", "worker", "3,4" if listening else "-,4"]


class GroupTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.runtime, _ = make_runtime()
        self.reactor = WorkersReactor()
        self.group = WorkerGroup(
            self.reactor, self.runtime, TCPListenAddress(socket.AF_INET, "127.0.0.1", 0), 2,
            command, {}, stop_timeout=10, install_signals=lambda reactor, hurry: None)
        self.group.startService()
        self.addCleanup(self._close)
        for hook, args, kwargs in self.reactor.whenRunningHooks:
            hook(*args, **kwargs)

    def _close(self) -> None:
        for sock in self.group.sockets:
            sock.close()

    def written(self, index: int) -> bytes:
        transport = self.reactor.links[index].transport
        data: bytes = transport.value()
        transport.clear()
        return data

    def end(self, index: int, after: float = STEADY) -> None:
        self.reactor.advance(after)
        _process, protocol = self.reactor.processes[index]
        protocol.processEnded(Failure(Exception("killed")))

    def test_started(self) -> None:
        """Two workers, each with its own socket of the group as descriptor 3 and its channel
        as 4, and a spare worker with a channel only; each is sent the state at once."""
        spawned = [process for process, _ in self.reactor.processes]
        self.assertEqual([p.args for p in spawned], [command(True), command(True),
                                                     command(False)])
        sockets = [sock.fileno() for sock in self.group.sockets]
        self.assertEqual([p.child_fds.get(LISTEN_FD) for p in spawned], [*sockets, None])
        self.assertTrue(all(CHANNEL_FD in p.child_fds for p in spawned))
        self.assertEqual(len({s.getsockname() for s in self.group.sockets}), 1)
        for index in range(3):
            self.assertIn(b"PushState", self.written(index))

    def test_push_on_change_only(self) -> None:
        """A change is pushed to every worker at the next tick; no change, nothing sent."""
        for index in range(3):
            self.written(index)
        self.reactor.advance(PUSH_INTERVAL)
        self.reactor.advance(PUSH_INTERVAL)
        self.assertEqual([self.written(index) for index in range(3)], [b""] * 3)
        self.runtime.balancer.pool[0].admin = AdminState.DRAIN
        self.reactor.advance(PUSH_INTERVAL)
        for index in range(3):
            self.assertIn(b"drain", self.written(index))

    def test_reopen_reaches_every_worker(self) -> None:
        """A reopen of the access log in the main process (SIGHUP, SIGUSR1: see
        penbal.connlog) is passed on to both workers and the spare."""
        for index in range(3):
            self.written(index)
        self.group.reopen_access_logs()
        for index in range(3):
            self.assertIn(b"ReopenAccessLog", self.written(index))

    def test_removed_now_reaches_every_worker(self) -> None:
        """remove N now in the main process is passed on to both workers and the spare at
        once, with the backend's number and address."""
        for index in range(3):
            self.written(index)
        self.group.backend_removed_now(1, "127.0.0.1:4001")
        for index in range(3):
            data = self.written(index)
            self.assertIn(b"RemoveNow", data)
            self.assertIn(b"127.0.0.1:4001", data)

    def test_spare_takes_over(self) -> None:
        """A worker that dies: the spare is handed its socket at once, a new spare starts."""
        self.end(0)
        spare_link = self.reactor.links[2]
        self.assertEqual(spare_link.transport.descriptors, [self.group.sockets[0].fileno()])
        self.assertIn(b"Serve", self.written(2))
        self.reactor.advance(0)
        self.assertEqual(self.reactor.processes[3][0].args, command(False))
        self.assertEqual(sorted(w.slot for w in self.group.workers.values()
                                if w.slot is not None), [0, 1])
        figures = self.group.figures()
        self.assertEqual((figures["replaced"], figures["pids"], figures["spare"]),
                         (1, [1002, 1001], 1003))

    def test_early_death_delays_the_new_spare(self) -> None:
        """A worker that dies soon after it started still gets the spare; the next spare
        waits a moment, so that a worker that cannot run does not spin."""
        self.end(0, after=0.1)
        self.assertEqual(len(self.reactor.processes), 3)
        self.reactor.advance(RETRY_DELAY)
        self.assertEqual(len(self.reactor.processes), 4)

    def test_no_spare_starts_a_worker(self) -> None:
        """Without a spare, a worker is started on the dead worker's socket."""
        self.end(2, after=0.1)  # the spare, early: the next one comes after RETRY_DELAY
        self.end(1, after=0)
        self.reactor.advance(RETRY_DELAY)
        started = [process.child_fds.get(LISTEN_FD) for process, _ in self.reactor.processes[3:]]
        self.assertEqual(sorted(started, key=str), [self.group.sockets[1].fileno(), None])

    def test_reports_summed(self) -> None:
        """Reports from the workers are summed into the backends."""
        address = self.runtime.balancer.pool[0].address
        for link in self.reactor.links[:2]:
            link.report({"active": 1, "accepted": 3,
                         "backends": {address: {"counters": {"total": 3, "active": 1}}}})
        counters = self.runtime.balancer.pool[0].counters
        self.assertEqual((counters.total, counters.active), (6, 2))
        self.assertEqual((self.group.totals.active, self.group.totals.accepted), (2, 6))

    def test_stop(self) -> None:
        """SIGTERM to every worker; done once all ended, then the sockets are closed."""
        fds = [sock.fileno() for sock in self.group.sockets]
        done = self.group.stopService()
        self.assertEqual([p.signals for p, _ in self.reactor.processes], [["TERM"]] * 3)
        for index in range(3):
            self.assertNoResult(done)
            self.end(index, after=0)
        self.successResultOf(done)
        self.assertEqual(self.group.sockets, [])
        self.assertEqual(len(self.reactor.processes), 3)  # none replaced
        for fd in fds:
            with self.assertRaises(OSError):
                os.fstat(fd)

    def test_stop_kills_late_workers(self) -> None:
        """Workers still there after the shutdown timeout and the close bound are killed."""
        self.group.stopService()
        self.reactor.advance(10 + 5 + 5)
        self.assertEqual([p.signals for p, _ in self.reactor.processes],
                         [["TERM", "KILL"]] * 3)

    def test_steering_follows_the_policy(self) -> None:
        """Sticky (the fixture's policy) steers; a spreading policy set at run time stops it."""
        from penbal.policies.choice import PolicyChoice

        self.assertTrue(self.group.steered)
        self.runtime.policy = PolicyChoice("roundrobin")
        self.runtime.balancer.pool[0].admin = AdminState.DRAIN  # a change: a push
        self.reactor.advance(PUSH_INTERVAL)
        self.assertFalse(self.group.steered)
