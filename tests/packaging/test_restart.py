# -*- test-case-name: tests.packaging.test_restart -*-
"""
Restarts that refuse no one: a holder plays systemd's part (it keeps the listening socket and
passes it to each penbal as fd 3 with LISTEN_FDS=1, LISTEN_FDNAMES and LISTEN_PID), penbal is
stopped and a new one started while a client connects in a loop; no connection may be refused
or reset.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import BIN, wait_for

#: Clients looping at once (so that some wait in the backlog while no penbal runs).
CLIENTS = 4
#: Each client's bounds: at most this many connections, for at most this many seconds.
MOST_CONNECTIONS = 3000
MOST_SECONDS = 60.0


class SocketHolder:
    """Holds a listening TCP socket on loopback and starts penbal processes on it, as
    systemd does for a socket unit: the socket as fd 3, C{LISTEN_FDS=1}, C{LISTEN_FDNAMES}
    (Twisted ignores the sockets without it), C{LISTEN_PID} the new process's pid (set by a
    shell that then execs penbal, so the pid is the same)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(1024)
        self.port = int(self.socket.getsockname()[1])
        self.started = 0

    def start(self, options: list[str], backends: list[str]) -> subprocess.Popen[bytes]:
        """penbal -f on the held socket (LISTEN systemd:domain=INET:index=0)."""
        self.started += 1
        fd = self.socket.fileno()
        command = [str(BIN / "penbal"), "-f", "--log-file", f"events-{self.started}.log",
                   *options, "systemd:domain=INET:index=0", *backends]
        shell = (f'export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=penbal; '
                 f'exec "$@" 3<&{fd} {fd}<&-')
        # bash, not sh: dash's redirections take one-digit descriptors only.
        return subprocess.Popen(["/bin/bash", "-c", shell, "bash", *command], cwd=self.work,
                                pass_fds=(fd,), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def close(self) -> None:
        self.socket.close()


@dataclass
class Outcomes:
    """What the looping client saw."""

    served: int = 0
    refused: int = 0
    reset: int = 0
    wrong: list[bytes] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def failed(self) -> int:
        return self.refused + self.reset + len(self.wrong)


def client_loop(port: int, outcomes: Outcomes, stop: threading.Event) -> None:
    """Connect, half-close, read the backend's greeting; until told, or the bounds."""
    deadline = time.monotonic() + MOST_SECONDS
    try:
        for _ in range(MOST_CONNECTIONS):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                    s.shutdown(socket.SHUT_WR)
                    reply = b""
                    while chunk := s.recv(100):
                        reply += chunk
            except ConnectionRefusedError:
                outcomes.refused += 1
                continue
            except ConnectionResetError:
                outcomes.reset += 1
                continue
            if reply == b"db\n":
                outcomes.served += 1
            else:
                outcomes.wrong.append(reply)
    finally:
        outcomes.done.set()


class RestartTests(SynchronousTestCase):
    def test_restart_refuses_no_one(self) -> None:
        """Stop penbal and start a new one on the held socket while clients connect in a
        loop: every connection is served, by the old penbal or the new one."""
        work = Path(self.mktemp())
        work.mkdir()
        backend = NameBackend("db")
        self.addCleanup(backend.stop)
        holder = SocketHolder(work)
        self.addCleanup(holder.close)
        processes: list[subprocess.Popen[bytes]] = []

        def end_all() -> None:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)

        self.addCleanup(end_all)
        first = holder.start(["-l", "access-1.log"], [backend.address])
        processes.append(first)
        stop = threading.Event()
        each = [Outcomes() for _ in range(CLIENTS)]
        clients = [threading.Thread(target=client_loop, args=(holder.port, outcomes, stop))
                   for outcomes in each]
        for client in clients:
            client.start()
            self.addCleanup(client.join, MOST_SECONDS + 30)
        self.addCleanup(stop.set)

        def served() -> int:
            return sum(outcomes.served for outcomes in each)

        def ended() -> bool:
            return any(outcomes.done.is_set() for outcomes in each)

        wait_for(lambda: served() >= 50 or ended(), 30, "50 connections through the first penbal")
        first.send_signal(signal.SIGTERM)  # as systemctl restart does
        self.assertEqual(first.wait(30), 0)
        at_restart = served()
        second = holder.start(["-l", "access-2.log"], [backend.address])
        processes.append(second)
        wait_for(lambda: served() >= at_restart + 50 or ended(), 30,
                 "50 connections through the second penbal")
        stop.set()
        for client in clients:
            client.join(MOST_SECONDS + 30)
        refused = sum(outcomes.refused for outcomes in each)
        reset = sum(outcomes.reset for outcomes in each)
        wrong = [reply for outcomes in each for reply in outcomes.wrong]
        self.assertEqual((refused, reset, wrong), (0, 0, []))
        self.assertGreaterEqual(served(), 100)
        second.send_signal(signal.SIGTERM)
        self.assertEqual(second.wait(30), 0)
        served_by = [len((work / f"access-{n}.log").read_text().splitlines()) for n in (1, 2)]
        self.assertEqual(sum(served_by), served())
        self.assertGreaterEqual(min(served_by), 50)
        print(f"restart: {served()} served by {CLIENTS} looping clients ({served_by[0]} +"
              f" {served_by[1]}), 0 refused, 0 reset")
