# -*- test-case-name: tests.ha.test_pair -*-
"""
Two penbal instances in two balancer namespaces, keepalived moving a virtual IP between them,
and a client namespace; the backends are the shared real Galera cluster.

The cluster listens on the root namespace's loopback, which no other namespace reaches.  Each
balancer namespace therefore gets, on its own loopback, one relay per node (socat) from the
node's SQL port to the node's unix socket: a socket file is reachable from every network
namespace.  The balancers' traffic thus stays on loopback, on unix sockets, and inside the
namespaces the test creates.  The instances are given the nodes in different orders.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.process import BIN, wait_for
from tests.galera.cluster import NODES, credentials_file, restore, shared_cluster
from tests.ha import keepalived
from tests.ha.namespaces import VIP, Topology
from tests.ha.outage import Outage, measure

PROBE = Path(__file__).resolve().parent / "probe.py"
SQL_PORT = 3306
HTTP_PORT = 8080
ORDERS = {"lb1": (1, 2, 3), "lb2": (3, 2, 1)}
CHECK_OPTIONS = ("--check", "galera", "--check-interval", "0.5", "--check-timeout", "0.5",
                 "--rise", "2", "--fall", "2")


def reads_zero(track: Path) -> bool:
    """True once the health watcher wrote 0 (healthy) to C{track}."""
    return track.exists() and track.read_text().strip() == "0"


class Pair:
    """The whole set-up, torn down by the test's cleanups even when a step fails."""

    def __init__(self, test: SynchronousTestCase) -> None:
        self.test = test
        self.cluster = shared_cluster()
        restore(self.cluster)
        self.dir = Path(tempfile.mkdtemp(prefix="penbal-ha-"))
        test.addCleanup(shutil.rmtree, self.dir, True)
        test.addCleanup(self.keep_logs, Path.cwd() / "ha-logs" / test.id().rsplit(".", 1)[-1])
        self.script = self.dir / "penbal-health"
        shutil.copy(keepalived.HEALTH_SCRIPT, self.script)
        self.script.chmod(0o755)
        self.topology = Topology()
        test.addCleanup(self.topology.teardown)
        self.topology.create()
        self.penbal: dict[str, subprocess.Popen[bytes]] = {}
        for host in ORDERS:
            self._relays(host)
            self._penbal(host)

    def log(self, name: str) -> Path:
        """Where process C{name} writes its output."""
        return self.dir / f"{name}.log"

    def logs(self) -> str:
        """Every log of the set-up (for failure messages)."""
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.dir.glob("*.log")))

    def keep_logs(self, where: Path) -> None:
        """Copy every log of the set-up to C{where} (the trial run's directory)."""
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        for log in self.dir.glob("*.log"):
            shutil.copy(log, where / log.name)

    def _relays(self, host: str) -> None:
        for i in NODES:
            port = self.cluster.node_port(i)
            self.topology.start(host, [
                "socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                f"UNIX-CONNECT:{self.cluster.socket_path(i)}"], self.log(f"{host}-relay{i}"))

    def _penbal(self, host: str) -> None:
        backends = [f"127.0.0.1:{self.cluster.node_port(i)}" for i in ORDERS[host]]
        self.penbal[host] = self.topology.start(host, [
            str(BIN / "twist"), "--log-format", "json", "penbal", *CHECK_OPTIONS,
            "--check-credentials", credentials_file(self.cluster), "--policy", "galera-writer",
            "--http", f"127.0.0.1:{HTTP_PORT}", f"0.0.0.0:{SQL_PORT}", *backends,
        ], self.log(f"{host}-penbal"))
        wait_for(lambda: self.healthy(host), 30, f"{host}: penbal's /health to say 200")

    def healthy(self, host: str) -> bool:
        """True if penbal on C{host} answers GET /health with 200."""
        if self.penbal[host].poll() is not None:
            raise AssertionError(f"penbal on {host} exited:\n{self.logs()}")
        return self.topology.check(host, [str(self.script), "127.0.0.1", str(HTTP_PORT)])

    def writers(self, *addresses: str) -> dict[str, str]:
        """The node answering C{SELECT @@wsrep_node_name} through each address, asked from
        the client's namespace."""
        out = subprocess.run(self.topology.command("client", [
            sys.executable, str(PROBE), "writer", self.cluster.app_user,
            self.cluster.app_password, *addresses]), capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError(f"writer probe failed: {out.stderr}")
        names: dict[str, str] = json.loads(out.stdout)
        return names

    def expected_writer(self) -> str:
        """The node of lowest wsrep_local_index, read from the nodes directly."""
        ranked = sorted(NODES, key=lambda i: int(self.cluster.status(i)["wsrep_local_index"]))
        return f"node{ranked[0]}"

    def start_keepalived(self) -> None:
        """A watcher and keepalived on each balancer host; return once the VIP answers."""
        for peer in (keepalived.LB1, keepalived.LB2):
            track = self.dir / f"{peer.name}.track"
            self.topology.start(peer.name, [str(self.script), "127.0.0.1", str(HTTP_PORT),
                                            "--watch", str(track)], self.log(f"{peer.name}-watch"))
            wait_for(partial(reads_zero, track), 10,
                     f"{peer.name}: the watcher to find penbal healthy")
            config = self.dir / f"{peer.name}.conf"
            config.write_text(keepalived.render(peer, self.script, track, VIP, HTTP_PORT))
            self.topology.start(peer.name, keepalived.command(config, self.dir, peer.name),
                                self.log(f"{peer.name}-keepalived"))
        wait_for(self.vip_answers, 20, "new connections through the VIP to succeed")

    def vip_answers(self) -> bool:
        """True if a new connection through the VIP gets a MySQL greeting now."""
        return self.topology.check("client", [sys.executable, str(PROBE), "once", VIP,
                                              str(SQL_PORT)])

    def vip_holder(self) -> list[str]:
        """The balancer hosts that have the VIP on their interface."""
        return [host for host in ORDERS if f"{VIP}/" in self.topology.addresses(host)]

    def failover(self, sig: signal.Signals, seconds: float = 4.0) -> Outage:
        """Send C{sig} to penbal on lb1 while a client opens new connections through the VIP
        every 20 ms; what the client saw."""
        probe = subprocess.Popen(self.topology.command("client", [
            sys.executable, str(PROBE), "connect", VIP, str(SQL_PORT), str(seconds), "0.02"]),
            stdout=subprocess.PIPE, text=True)
        self.topology.processes.append(probe)
        assert probe.stdout is not None
        json.loads(probe.stdout.readline())  # ready
        time.sleep(0.5)  # a baseline of good attempts before the fault
        t_signal = time.monotonic()
        self.penbal["lb1"].send_signal(sig)
        out, _ = probe.communicate(timeout=seconds + 20)
        attempts = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return measure([a for a in attempts if "start" in a], t_signal)
