# -*- test-case-name: tests.ha.test_pair -*-
"""
Network namespaces for the HA tests: two balancer hosts and a client on a bridge that lives in
a fourth namespace.  Every address (10.99.0.0/24) exists only inside these namespaces, whose
names carry the test process's pid; nothing is created in the root namespace but the handles.

Processes started in a namespace are remembered by pid and ended by pid at teardown, before the
namespaces are deleted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SUBNET = "10.99.0"
HOSTS = {"lb1": f"{SUBNET}.11", "lb2": f"{SUBNET}.12", "client": f"{SUBNET}.100"}
VIP = f"{SUBNET}.10"
IP = "/usr/sbin/ip" if Path("/usr/sbin/ip").exists() else "ip"


def run(*args: str, timeout: float = 10) -> str:
    """Run a command; its output, or an AssertionError naming the command and its error."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): "
                             f"{result.stderr.strip()}")
    return result.stdout


class Topology:
    """The bridge namespace and one namespace per host in L{HOSTS}, created by L{create}."""

    def __init__(self, prefix: str = "penbal-ha") -> None:
        self.prefix = f"{prefix}-{os.getpid()}"
        self.bridge = f"{self.prefix}-net"
        self.processes: list[subprocess.Popen[Any]] = []
        self.created: list[str] = []

    def ns(self, host: str) -> str:
        """The namespace of C{host} (a key of L{HOSTS})."""
        return f"{self.prefix}-{host}"

    def create(self) -> None:
        """The namespaces, the bridge, and one veth per host (made inside the bridge's
        namespace, its peer moved straight into the host's)."""
        if os.geteuid() != 0:
            raise AssertionError("the HA tests need root (ip netns, keepalived)")
        for name in [self.bridge, *(self.ns(h) for h in HOSTS)]:
            run(IP, "netns", "add", name)
            self.created.append(name)
            run(IP, "-n", name, "link", "set", "lo", "up")
        run(IP, "-n", self.bridge, "link", "add", "br0", "type", "bridge")
        run(IP, "-n", self.bridge, "link", "set", "br0", "up")
        for host, address in HOSTS.items():
            ns = self.ns(host)
            run(IP, "-n", self.bridge, "link", "add", f"v-{host}", "type", "veth", "peer",
                "name", "eth0", "netns", ns)
            run(IP, "-n", self.bridge, "link", "set", f"v-{host}", "master", "br0", "up")
            run(IP, "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            run(IP, "-n", ns, "link", "set", "eth0", "up")

    def command(self, host: str, args: Sequence[str]) -> list[str]:
        """C{args} run inside C{host}'s namespace (ip netns exec execs it: same pid)."""
        return [IP, "netns", "exec", self.ns(host), *args]

    def start(self, host: str, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start C{args} in C{host}'s namespace, output to C{log}; ended at teardown."""
        with log.open("ab") as out:
            process = subprocess.Popen(self.command(host, args), stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def check(self, host: str, args: Sequence[str], timeout: float = 10) -> bool:
        """True if C{args} exits 0 in C{host}'s namespace."""
        return subprocess.run(self.command(host, args), capture_output=True,
                              timeout=timeout).returncode == 0

    def addresses(self, host: str) -> str:
        """C{ip addr} of C{host}'s eth0."""
        return run(IP, "-n", self.ns(host), "-brief", "addr", "show", "dev", "eth0")

    def teardown(self) -> None:
        """End every process started here (by pid: resumed, then killed), then delete the
        namespaces; bounded in time."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGCONT)
                    os.kill(process.pid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for name in reversed(self.created):
            # What is left in a namespace of ours was started by us (keepalived's children,
            # socat's per-connection children): end it by pid too.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (left := self._pids(name)):
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
            with contextlib.suppress(AssertionError):
                run(IP, "netns", "del", name)
        self.created.clear()

    def _pids(self, name: str) -> list[int]:
        try:
            return [int(pid) for pid in run(IP, "netns", "pids", name).split()]
        except AssertionError:
            return []
