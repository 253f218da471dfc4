# -*- test-case-name: tests.bench.test_harness -*-
"""
Processes started by the benchmark: pinning, limits, readiness, CPU and memory.

Every process is started here, remembered by its pid, and ended by that pid
only (SIGTERM, a bounded wait, then SIGKILL of the same pid).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from penbal.testing.process import descendants as descendants

LOOPBACK = "127.0.0.1"
NOFILE = 65536
STOP_DEADLINE = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Every core the benchmark may use, read before the harness pins itself.
ALL_CORES = frozenset(os.sched_getaffinity(0))


class BenchError(Exception):
    """A failure the benchmark reports to the user without a traceback."""


class CpuTimes(NamedTuple):
    """CPU seconds a process spent in user space and in the kernel (utime, stime)."""

    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system

    def since(self, earlier: CpuTimes) -> CpuTimes:
        """The CPU time used between ``earlier`` and these times."""
        return CpuTimes(self.user - earlier.user, self.system - earlier.system)


def require_tools(names: Sequence[str]) -> None:
    """Fail clearly if any of the named executables is not on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise BenchError(
            "missing tools: " + ", ".join(missing) + " (install them with bench/install-tools)"
        )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def raise_nofile(wanted: int = NOFILE) -> int:
    """Raise RLIMIT_NOFILE to ``wanted`` (or the hard limit); return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
        return wanted
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
        return min(wanted, hard)


def pin_self(core: int) -> None:
    """Pin the calling process (and so its later children) to one core."""
    os.sched_setaffinity(0, {core})


@contextmanager
def unpinned() -> Iterator[None]:
    """Let the harness (and what it starts meanwhile) run on every core."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, ALL_CORES)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _preexec(core: int | None) -> Callable[[], None]:
    """Pin to ``core``, or with ``None`` allow every core; raise the limit."""

    def setup() -> None:
        os.sched_setaffinity(0, ALL_CORES if core is None else {core})
        raise_nofile()

    return setup


def _listening_ports() -> set[int]:
    """Ports with a TCP socket in LISTEN state, from /proc/net/tcp{,6}."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Proc:
    """One child process, pinned to a core (or unpinned: ``core`` None), with its output in a
    log file."""

    def __init__(self, name: str, argv: Sequence[str], core: int | None, logdir: Path):
        self.name = name
        self.argv = list(argv)
        self.core = core
        self.log = logdir / f"{name}.log"
        with self.log.open("wb") as out:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_preexec(core),
                )
            except OSError as e:
                raise BenchError(f"{name}: cannot start {self.argv[0]}: {e}") from e
        self.pid = self._popen.pid

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the process's output."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self._popen.poll() is None

    def wait_listening(self, port: int, deadline: float = 15.0) -> None:
        """Wait until something listens on ``port`` while this process lives.

        Reads /proc/net/tcp, so no probe connection reaches the process.
        """
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if not self.alive():
                raise BenchError(
                    f"{self.name} exited with code {self._popen.returncode}"
                    f" before listening on {LOOPBACK}:{port}\n"
                    f"  command: {' '.join(self.argv)}\n"
                    f"  output:\n{self.log_tail()}"
                )
            if port in _listening_ports():
                return
            time.sleep(0.05)
        raise BenchError(
            f"{self.name} did not listen on {LOOPBACK}:{port} within {deadline} s\n"
            f"  command: {' '.join(self.argv)}\n  output:\n{self.log_tail()}"
        )

    def cpu_times(self) -> CpuTimes:
        """User and system CPU time of the process (all its threads)."""
        return _cpu_times(self.pid)

    def tree_cpu_times(self) -> CpuTimes:
        """User and system CPU time of the process and every live descendant (a main
        process and its workers)."""
        times = [_cpu_times(pid) for pid in (self.pid, *descendants(self.pid))]
        return CpuTimes(sum(t.user for t in times), sum(t.system for t in times))

    def rss_kib(self) -> int:
        """Resident set size (VmRSS) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError(f"{self.name}: no VmRSS in /proc/{self.pid}/status")

    def send(self, signum: int) -> None:
        """Send ``signum`` to this pid, if it still runs."""
        if self._popen.poll() is None:
            self._popen.send_signal(signum)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process to end; True if it did."""
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        """SIGTERM this pid, wait with a deadline, then SIGKILL this pid."""
        if self._popen.poll() is not None:
            return
        self._popen.send_signal(signal.SIGTERM)
        try:
            self._popen.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait(timeout=STOP_DEADLINE)


def parse_stat_times(stat: str) -> CpuTimes:
    """utime and stime (fields 14 and 15) of a ``/proc/PID/stat`` line, in seconds."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return CpuTimes(int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS)


def _cpu_times(pid: int) -> CpuTimes:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return CpuTimes(0.0, 0.0)  # ended meanwhile
    return parse_stat_times(stat)


class CpuMeter:
    """CPU use of one process (with ``tree``, and its descendants) between ``start()`` and
    ``stop()``, in %."""

    def __init__(self, proc: Proc | None, tree: bool = False):
        self.proc = proc
        self.tree = tree
        self._cpu = CpuTimes(0.0, 0.0)
        self._wall = 0.0
        #: CPU time used between start() and stop(), user and system.
        self.times = CpuTimes(0.0, 0.0)

    @property
    def seconds(self) -> float:
        """CPU seconds (user plus system) used between start() and stop()."""
        return self.times.total

    def _now(self) -> CpuTimes:
        assert self.proc is not None
        return self.proc.tree_cpu_times() if self.tree else self.proc.cpu_times()

    def start(self) -> None:
        if self.proc is not None:
            self._cpu = self._now()
        self._wall = time.monotonic()

    def stop(self) -> float | None:
        wall = time.monotonic() - self._wall
        if self.proc is None or wall <= 0:
            return None
        self.times = self._now().since(self._cpu)
        return 100.0 * self.seconds / wall


class CoreMeter:
    """How busy each CPU core was between ``start()`` and ``stop()``, in %.

    Counts everything that ran on the core, ours or not: on a shared machine
    it shows when something else competed for the cores.
    """

    def __init__(self) -> None:
        self._start: dict[str, tuple[int, int]] = {}

    @staticmethod
    def _sample() -> dict[str, tuple[int, int]]:
        counters: dict[str, tuple[int, int]] = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(field) for field in fields[:8]]
                idle = ticks[3] + ticks[4]
                counters[name[3:]] = (sum(ticks) - idle, sum(ticks))
        return counters

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        busy: dict[str, float] = {}
        for core, (used, total) in self._sample().items():
            used0, total0 = self._start.get(core, (used, total))
            if total > total0:
                busy[core] = round(100.0 * (used - used0) / (total - total0), 1)
        return busy


def machine_busy(seconds: float = 1.0) -> dict[str, float]:
    """Per-core busy % over ``seconds`` while the benchmark itself is idle."""
    meter = CoreMeter()
    meter.start()
    time.sleep(seconds)
    return meter.stop()


def wait_quiet(deadline: float, threshold: float) -> dict[str, float]:
    """Sample each second until every core is under ``threshold`` % busy.

    Gives up after ``deadline`` seconds; returns the last sample.
    """
    end = time.monotonic() + deadline
    busy = machine_busy()
    while max(busy.values(), default=0.0) >= threshold and time.monotonic() < end:
        busy = machine_busy()
    return busy


def run_tool(argv: Sequence[str], timeout: float) -> str:
    """Run a load tool to completion, bounded in time; return its stdout."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{argv[0]} did not finish within {timeout} s") from e
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} exited with code {done.returncode}:\n"
            f"{done.stdout[-800:]}{done.stderr[-800:]}"
        )
    return done.stdout
