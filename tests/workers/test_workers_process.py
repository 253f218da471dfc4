# -*- test-case-name: tests.workers.test_workers_process -*-
"""
A real C{twist penbal --workers 2} on loopback: clients relayed by worker processes, the
sticky policy exact across workers, a killed worker replaced without a failed client, state
pushed to the workers, counters summed in the main process, graceful stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from penbal.testing.backends import NameBackend
from penbal.testing.process import (
    BIN,
    PenbalProcess,
    free_port,
    parent_pids,
    run_penbal,
    wait_for,
)
from tests.integration.operations import OperationsCase

#: Client source addresses: the steering program sends even and odd last bytes to different
#: workers of two.
SOURCES = [f"127.0.0.{last}" for last in range(2, 10)]


def children(pid: int) -> set[int]:
    """The pids of the processes whose parent is C{pid}."""
    return set(parent_pids().get(pid, []))


def named(port: int, source: str, timeout: float = 10) -> str:
    """Connect from C{source} and return the name the backend greets with."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                raise ConnectionError(f"closed after {data!r}")
            data += chunk
        sock.sendall(b"ping")
        echoed = b""
        while len(echoed) < 4:
            chunk = sock.recv(4 - len(echoed))
            if not chunk:
                raise ConnectionError("closed before the echo")
            echoed += chunk
        assert echoed == b"ping", echoed
        return data.decode().strip()


class WorkersCase(OperationsCase):
    """A penbal with two workers and a control port, in front of named backends."""

    workers = 2

    def start_workers(self, backends: list[NameBackend], *options: str,
                      access_log: bool = False) -> int:
        self.port = free_port()
        self.control = f"127.0.0.1:{free_port()}"
        self.proc = PenbalProcess(
            ["--workers", str(self.workers), "-C", self.control, *options,
             f"127.0.0.1:{self.port}", *(b.address for b in backends)],
            listen_port=self.port, probe=False, access_log=access_log,
        )
        self.addCleanup(self.proc.stop)
        self.wait_serving(self.workers)
        wait_for(lambda: self.channels() == self.workers + 1, 30,
                 f"the spare worker's channel (log: {self.proc.log_path})")
        return self.port

    def channels(self) -> int:
        """How many workers (the spare included) have opened their channel, so far: each
        logs it once its imports are done."""
        return sum(1 for event in self.log_events()
                   if event.get("log_namespace") == "twisted.protocols.amp"
                   and event.get("cls") == "WorkerLink"
                   and "established" in str(event.get("log_format", "")))

    def serving(self) -> int:
        """How many times a worker started listening, so far."""
        return sum(1 for event in self.log_events()
                   if event.get("log_namespace") == "penbal.service"
                   and str(event.get("log_format", "")).startswith("penbal listening on"))

    def wait_serving(self, count: int, timeout: float = 30) -> None:
        wait_for(lambda: self.serving() >= count, timeout,
                 f"{count} worker starts (log: {self.proc.log_path})")

    def worker_pids(self) -> set[int]:
        """The main process's children: its workers and the spare."""
        return children(self.proc.pid)


class WorkersRelayTests(WorkersCase):
    def test_clients_relayed_by_workers(self) -> None:
        """Clients from many addresses are relayed (greeting and echo) by two workers, and
        the main process counts each connection once."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b])
        self.assertEqual(len(self.worker_pids()), 3)  # two workers and the spare
        names = [named(port, source) for source in SOURCES for _ in range(3)]
        self.assertEqual(set(names), {"a", "b"})

        def summed() -> bool:
            status = self.status()
            totals = sum(backend["counters"]["total"] for backend in status["backends"])
            return bool(status["connections_accepted"] == len(names) == totals)

        wait_for(summed, 10, f"{len(names)} connections in the status")
        self.assertEqual(self.status()["connections_active"], 0)
        workers = self.status()["workers"]
        self.assertEqual((workers["count"], len(workers["pids"]), workers["replaced"]),
                         (2, 2, 0))
        self.assertEqual(self.worker_pids(), {*workers["pids"], workers["spare"]})

    def test_recent_clients(self) -> None:
        """Clients whose connections ended in the workers are the main process's recent
        clients (Pen's recent command), once each, as with a single penbal."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b])
        for source in SOURCES:
            named(port, source)
        wait_for(lambda: self.status()["connections_accepted"] == len(SOURCES), 10,
                 "every connection counted")
        wait_for(lambda: self.status()["connections_active"] == 0, 10, "every connection over")

        def recent() -> dict[str, str]:
            return {line.split()[0]: line for line in self.ctl("recent").splitlines() if line}

        wait_for(lambda: set(recent()) == set(SOURCES), 10, "every client in recent")
        self.assertTrue(all(" connects 1 " in line for line in recent().values()), recent())

    def test_sticky_across_workers(self) -> None:
        """With the default sticky policy a client address always reaches the same backend,
        whichever connection it is: the steering keeps it on one worker."""
        backends = self.backends("a", "b", "c")
        port = self.start_workers(backends)
        seen: dict[str, set[str]] = {}
        for _ in range(5):
            for source in SOURCES:
                seen.setdefault(source, set()).add(named(port, source))
        self.assertEqual([len(names) for names in seen.values()], [1] * len(SOURCES))

    def test_live_connections_summed(self) -> None:
        """Connections held open in both workers show as live in the main process."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b])
        held = []
        for source in SOURCES[:4]:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                            source_address=(source, 0))
            self.addCleanup(sock.close)
            sock.recv(100)
            held.append(sock)
        wait_for(lambda: self.status()["connections_active"] == 4, 10, "4 live connections")
        status = self.status()
        live = sum(backend["counters"]["active"] for backend in status["backends"])
        self.assertEqual(live, 4)
        listed = sorted(c["client"].partition(":")[0] for c in status["connections"])
        self.assertEqual(listed, SOURCES[:4])

    def test_drain_reaches_workers(self) -> None:
        """A backend drained on the control port gets no new client 100 ms later, in any
        worker; set up again, it gets clients again."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b], "-r")
        self.ctl("server", "0", "drain")
        time.sleep(0.1)  # the bound under test: every worker knows within 100 ms
        self.assertEqual({named(port, source) for source in SOURCES}, {"b"})
        self.ctl("server", "0", "up")
        time.sleep(0.1)
        self.assertEqual({named(port, source) for source in SOURCES}, {"a", "b"})

    def test_remove_now_closes_in_every_worker(self) -> None:
        """remove N now closes the backend's connections in every worker at once (a plain
        remove lets them drain), as a single penbal does; the other backend's stay."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b])  # sticky: each client address steered to a worker
        held: dict[str, list[socket.socket]] = {"a": [], "b": []}
        for source in SOURCES:  # even and odd last bytes: four clients in each worker
            sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                            source_address=(source, 0))
            self.addCleanup(sock.close)
            held[sock.recv(100).decode().strip()].append(sock)
        wait_for(lambda: self.status()["connections_active"] == len(SOURCES), 10,
                 "every connection live")
        self.assertTrue(held["a"] and held["b"], held)
        reply = self.ctl("remove", "0", "now")
        self.assertIn(f"removed server {a.address}, {len(held['a'])} connections closed", reply)
        for sock in held["a"]:
            self.assertEqual(sock.recv(100), b"")  # closed (the 10 s timeout fails the test)
        for sock in held["b"]:
            sock.sendall(b"ping")
            self.assertEqual(sock.recv(4), b"ping")
        wait_for(lambda: self.status()["connections_active"] == len(held["b"]), 10,
                 "b's connections left")
        self.assertEqual([s["address"] for s in self.status()["backends"]], [b.address])

    def test_added_and_removed_backend_reach_workers(self) -> None:
        """A backend added on the control port takes clients in every worker 100 ms later;
        one removed, or set down, takes none."""
        a, b, c = self.backends("a", "b", "c")
        port = self.start_workers([a], "-r")
        self.ctl("add", b.address)
        self.ctl("add", c.address)
        time.sleep(0.1)
        self.assertEqual({named(port, source) for source in SOURCES * 2}, {"a", "b", "c"})
        self.ctl("remove", "0")
        # a leaves the table once its last connection is over (a removed backend drains):
        # only then is c number 1.
        wait_for(lambda: [s["address"] for s in self.status()["backends"]] == [b.address,
                                                                               c.address],
                 10, "a to leave the table")
        self.ctl("server", "1", "down")  # c, now number 1
        time.sleep(0.1)
        self.assertEqual({named(port, source) for source in SOURCES * 2}, {"b"})
        wait_for(lambda: [s["address"] for s in self.status()["backends"]] == [b.address,
                                                                               c.address],
                 10, "a to leave the table")


class WorkersOperationsTests(WorkersCase):
    def test_sighup_reload_reaches_all(self) -> None:
        """SIGHUP re-reads the config file once, in the main process, and every worker
        relays by the new file."""
        a, b = self.backends("a", "b")
        config = Path(self.mktemp())
        config.write_text("roundrobin\n")
        port = self.start_workers([a, b], "-F", str(config))
        self.assertEqual({named(port, source) for source in SOURCES}, {"a", "b"})
        config.write_text("roundrobin\nserver 0 down\n")
        self.proc.process.send_signal(signal.SIGHUP)
        wait_for(lambda: self.status()["backends"][0]["admin"] == "down", 10, "the reload")
        time.sleep(0.1)  # the bound under test: the workers know within 100 ms
        self.assertEqual({named(port, source) for source in SOURCES * 2}, {"b"})
        reloads = [event for event in self.log_events()
                   if event.get("penbal_event") == "reloaded"]
        self.assertEqual(len(reloads), 1)

    def test_access_log_rotated(self) -> None:
        """logrotate moves the access log and signals the main process (SIGHUP, or SIGUSR1):
        every worker reopens it, so the records of what the workers relay afterwards are in
        the new file, none lost in the moved one."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b], access_log=True)
        path = self.proc.access_path
        assert path is not None
        processes = 1 + self.workers + 1  # the main process, the workers and the spare

        def reopened() -> int:
            return sum(1 for event in self.log_events()
                       if event.get("penbal_event") == "access-log-reopened")

        def records(file: Path) -> list[str]:
            return [line for line in file.read_text().splitlines() if line.endswith("}")]

        def relayed() -> None:
            """One connection from each source, all their records in the file at the path."""
            for source in SOURCES:
                named(port, source)
            wait_for(lambda: path.exists() and len(records(path)) == len(SOURCES), 10,
                     f"{len(SOURCES)} records in {path}")

        moved: list[Path] = []
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            relayed()
            expected = reopened() + processes
            moved.append(path.rename(path.with_name(f"{path.name}.{len(moved) + 1}")))
            self.proc.process.send_signal(signum)
            wait_for(lambda expected=expected: reopened() == expected, 10,  # type: ignore[misc]
                     f"{processes} processes to reopen the access log")
        relayed()  # into the file reopened last
        self.assertEqual([len(records(file)) for file in moved], [len(SOURCES)] * 2)

    def test_queues_summed(self) -> None:
        """With --queue-timeout each worker holds the clients it met while no backend is
        usable; the main process's views show the workers' queues summed (waiting, held,
        expired), as a single penbal shows its own."""
        a, = self.backends("a")
        a.stop()  # refuses connections: every client waits, then expires
        port = self.start_workers([a], "--queue-timeout", "1", "--queue-max", "50")
        held = []
        for source in SOURCES:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                            source_address=(source, 0))
            self.addCleanup(sock.close)
            held.append(sock)
        wait_for(lambda: self.status()["queue"]["held"] == len(SOURCES), 10,
                 f"{len(SOURCES)} clients held (status: {self.status().get('queue')})")
        queue = self.status()["queue"]
        self.assertEqual((queue["timeout"], queue["max"]), (1.0, 50))
        for sock in held:
            self.assertEqual(sock.recv(100), b"")  # closed at the deadline
        wait_for(lambda: self.status()["queue"]["expired"] == len(SOURCES), 10,
                 "every held client expired")
        self.assertEqual(self.status()["queue"]["waiting"], 0)

    def test_health_checked_once(self) -> None:
        """Health checks run in the main process only: one check per interval per backend,
        not one per worker; a backend found unfit shows so."""
        a, b = self.backends("a", "b")
        self.start_workers([a, b], "--check", "tcp", "--check-interval", "0.2")
        first = a.connections
        started = time.monotonic()
        wait_for(lambda: time.monotonic() - started > 2, 5, "two seconds")
        checks = a.connections - first
        rounds = (time.monotonic() - started) / 0.2
        self.assertLessEqual(checks, rounds + 2)
        self.assertGreaterEqual(checks, rounds / 2)
        b.stop()
        wait_for(lambda: self.status()["backends"][1]["state"] == "unfit", 10,
                 "backend b to be unfit")


class WorkersBlacklistTests(WorkersCase):
    def test_blacklisting_shared(self) -> None:
        """A backend a worker failed to connect to is blacklisted in the main process (and
        so pushed to every worker); clients fail over and get through."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b], "-r")
        b.stop()
        self.assertEqual({named(port, source) for source in SOURCES}, {"a"})

        def blacklisted() -> bool:
            backend = self.status()["backends"][1]
            return bool(backend["state"] == "blacklisted" and backend["blacklisted_for"] > 0)

        wait_for(blacklisted, 10, "backend b blacklisted in the main process")
        self.assertGreaterEqual(self.status()["backends"][1]["counters"]["failures"], 1)


class WorkersLifeTests(WorkersCase):
    def worker_pid(self, number: int) -> int:
        """The pid of worker C{number}, as the main process logged it (the newest)."""
        pids = [int(event["pid"]) for event in self.log_events()
                if event.get("penbal_event") == "worker-serving"
                and event.get("number") == number]
        return pids[-1]

    def test_killed_worker_replaced_without_failures(self) -> None:
        """A worker killed with SIGKILL is replaced within 2 s, and clients connecting
        meanwhile all get through: those steered to the dead worker's socket wait there
        for its replacement (127.0.0.2 is steered to socket 0, 127.0.0.3 to socket 1)."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b])
        victim = self.worker_pid(0)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        named(port, "127.0.0.2")  # queued on socket 0 until the replacement adopts it
        replaced = time.monotonic() - killed
        failures: list[str] = []
        count = 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and count < 2000:
            for source in SOURCES:
                try:
                    named(port, source)
                except (OSError, AssertionError) as e:
                    failures.append(f"{source}: {e!r}")
                count += 1
        self.assertEqual(failures, [])
        self.assertLess(replaced, 2.0)
        wait_for(lambda: len(self.worker_pids()) == 3, 20, "a new spare worker")
        pids = self.worker_pids()
        self.assertNotIn(victim, pids)
        self.assertIn(self.worker_pid(0), pids)
        self.assertNotEqual(self.worker_pid(0), victim)

    def test_clients_during_the_kill_get_through(self) -> None:
        """Clients connecting from many addresses while a worker is killed all get through."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b])
        victim = self.worker_pid(1)
        failures: list[str] = []
        for round_number in range(30):
            if round_number == 5:
                os.kill(victim, signal.SIGKILL)
            for source in SOURCES:
                try:
                    named(port, source)
                except (OSError, AssertionError) as e:
                    failures.append(f"{source}: {e!r}")
        self.assertEqual(failures, [])
        self.assertNotIn(victim, self.worker_pids())

    def test_sigterm_stops_all(self) -> None:
        """SIGTERM stops the main process and every worker; it exits 0."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b])
        named(port, SOURCES[0])
        workers = self.worker_pids()
        self.assertEqual(self.proc.stop(), 0)
        self.assertEqual(len(workers), 3)
        self.assertEqual([_state(pid) for pid in workers], ["Z", "Z", "Z"])

    def test_workers_stop_when_the_main_process_dies(self) -> None:
        """A main process killed with SIGKILL leaves no worker behind: each sees its channel
        close and stops."""
        a, b = self.backends("a", "b")
        self.start_workers([a, b])
        workers = self.worker_pids()
        self.proc.process.kill()
        self.proc.process.wait(10)
        wait_for(lambda: all(_state(pid) == "Z" for pid in workers), 20,
                 f"workers {sorted(workers)} to stop")

    def test_live_connection_finishes_on_sigterm(self) -> None:
        """A live client connection in a worker ends on its own after SIGTERM: the worker
        stops gracefully, and penbal exits 0."""
        a, b = self.backends("a", "b")
        port = self.start_workers([a, b])
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(sock.close)
        self.assertIn(sock.recv(100), (b"a\n", b"b\n"))
        self.proc.process.send_signal(signal.SIGTERM)
        sock.sendall(b"still here")
        self.assertEqual(sock.recv(100), b"still here")
        sock.close()
        self.assertEqual(self.proc.process.wait(20), 0)


def _state(pid: int) -> str:
    """A process's state letter; Z (zombie) for one that is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "Z"


class WorkersDaemonTests(OperationsCase):
    def test_twistd(self) -> None:
        """Under twistd the workers relay and log (as text) to the daemon's log file, given
        relative to the directory twistd was started in; SIGTERM ends them all."""
        a = NameBackend("a")
        self.addCleanup(a.stop)
        work = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, work, True)
        pidfile, port = work / "pen.pid", free_port()
        subprocess.run(
            [str(BIN / "twistd"), "--pidfile", "pen.pid", "--logfile", "pen.log", "penbal",
             "--workers", "2", f"127.0.0.1:{port}", a.address],
            check=True, timeout=30, cwd=work,
        )
        wait_for(pidfile.exists, 20, "the pid file")
        pid = int(pidfile.read_text())
        self.addCleanup(_end, pid)
        self.assertEqual({named(port, source) for source in SOURCES}, {"a"})
        log = work / "pen.log"
        wait_for(lambda: log.read_text().count("penbal listening on IPv4Address") == 2, 10,
                 "both workers' start in the log file")
        self.assertNotIn('{"', log.read_text())  # text, not JSON
        workers = children(pid)
        self.assertEqual(len(workers), 3)
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: _state(pid) == "Z" and all(_state(w) == "Z" for w in workers), 30,
                 "the daemon and its workers to exit")


def _end(pid: int) -> None:
    """Clean-up: SIGKILL a daemon this test started, if it is still there."""
    if _state(pid) != "Z":
        os.kill(pid, signal.SIGKILL)


class WorkersOptionTests(OperationsCase):
    def test_udp_refused(self) -> None:
        """UDP mode stays one process: --workers 2 with -U is refused in one line."""
        result = run_penbal(["-U", "--workers", "2", f"127.0.0.1:{free_port()}", "127.0.0.1:9"])
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(result.stderr.strip(),
                         "penbal: error: --workers 2 is for TCP: UDP mode (-U) runs in one process")

    def test_unix_listen_refused(self) -> None:
        """--workers needs a TCP listen address the main process can bind."""
        result = run_penbal(["--workers", "2", "unix:/tmp/penbal-none.sock", "127.0.0.1:9"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--workers needs a plain TCP listen address", result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1)
