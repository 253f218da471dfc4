# -*- test-case-name: tests.integration.test_operations_reload -*-
"""
SIGHUP on a real penbal: a good config file is applied as a diff, a bad one is rejected whole;
without a config file, and however early it comes, SIGHUP does not end penbal.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import PenbalProcess, listening
from tests.integration.operations import NamedClient, OperationsCase, free_port, wait_for


class ReloadTests(OperationsCase):
    """penbal -F FILE, then the file is rewritten and penbal gets SIGHUP."""

    def setUp(self) -> None:
        self.b0, self.b1, self.b2 = self.backends("b0", "b1", "b2")
        self.path = self.mktemp()
        self.write(f"add 127.0.0.1:{self.b1.port}\nblacklist 10\n")
        self.start([self.b0], "-F", self.path, "--policy", "roundrobin")

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def hup(self) -> None:
        self.proc.process.send_signal(signal.SIGHUP)

    def events(self, kind: str) -> list[dict[str, object]]:
        return [e for e in self.log_events() if e.get("penbal_event") == kind]

    def test_file_applied_at_start(self) -> None:
        """The file's commands apply after the command line."""
        status = self.status()
        self.assertEqual([b["port"] for b in status["backends"]], [self.b0.port, self.b1.port])
        self.assertEqual(status["settings"]["blacklist"], 10)

    def test_good_file(self) -> None:
        """Backends added, removed, changed; policy and limits; live connections and drain kept."""
        clients = [self.client() for _ in range(4)]
        on_b0 = [c for c in clients if c.name == "b0"]
        self.ctl("server", "0", "drain")
        self.write(
            "no servers\n"
            f"add 127.0.0.1:{self.b0.port}:0:0:5:0\n"
            f"add 127.0.0.1:{self.b2.port}\n"
            "conn_max 77\nhash\n"
        )
        self.hup()
        wait_for(lambda: len(self.events("reloaded")) == 1, 20, "the reload")
        status = self.status()
        ports = [b["port"] for b in status["backends"]]
        self.assertEqual(ports[0], self.b0.port)
        self.assertIn(self.b2.port, ports)
        self.assertEqual(status["backends"][0]["state"], "draining")
        self.assertEqual(status["backends"][0]["weight"], 5)
        self.assertEqual(status["settings"]["conn_max"], 77)
        self.assertEqual(status["settings"]["blacklist"], 30)
        self.assertEqual(status["policy"], "hash")
        for client in clients:
            self.assertEqual(client.echo(b"intact"), b"intact")
        self.assertEqual(status["backends"][0]["counters"]["active"], len(on_b0))
        for client in clients:
            client.close()
        wait_for(lambda: len(self.status()["backends"]) == 2, 10, "b1 to leave the table")
        names = {NamedClient(self.port).name for _ in range(10)}
        self.assertEqual(names, {"b2"})

    def test_bad_file(self) -> None:
        """A file with one bad line changes nothing; the log names file, line and reason."""
        before = self.status()
        client = self.client()
        self.write(f"conn_max 5\nadd 127.0.0.1:{self.b2.port}\nserver 1 colour blue\n")
        self.hup()
        wait_for(lambda: len(self.events("reload-rejected")) == 1, 20, "the rejection")
        event = self.events("reload-rejected")[0]
        self.assertEqual(event["line"], 3)
        self.assertTrue(str(event["path"]).endswith(self.path))
        self.assertIn("unknown setting 'colour'", str(event["reason"]))
        after = self.status()
        self.assertEqual(after["backends"], [dict(b, counters=a["counters"])
                                             for b, a in zip(before["backends"],
                                                             after["backends"], strict=True)])
        self.assertEqual(after["settings"], before["settings"])
        self.assertEqual(client.echo(b"still"), b"still")
        self.assertIsNone(self.proc.process.poll())

    def test_reload_command(self) -> None:
        """penbal-ctl ... reload does what SIGHUP does and answers the outcome."""
        self.write("conn_max 42\n")
        answer = self.ctl("reload")
        self.assertTrue(answer.startswith("reloaded "), answer)
        self.assertEqual(self.status()["settings"]["conn_max"], 42)
        self.write("conn_max x\n")
        self.assertIn("line 1: invalid conn_max", self.ctl("reload", expect=1))


def events(proc: PenbalProcess, kind: str) -> list[dict[str, Any]]:
    """The process's JSON log events with C{penbal_event} C{kind}."""
    found = []
    for line in proc.log().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("penbal_event") == kind:
            found.append(event)
    return found


def catches(pid: int, signum: int) -> bool:
    """Whether process C{pid} has a handler for C{signum} (its SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


class HangupTests(SynchronousTestCase):
    """SIGHUP never ends penbal (its default action would: exit status 129)."""

    def setUp(self) -> None:
        self.backend = NameBackend("b0")
        self.addCleanup(self.backend.stop)

    def penbal(self, *options: str) -> tuple[PenbalProcess, int]:
        port = free_port()
        # No probe connection: wait_listening reads /proc, so the HUP can follow at once.
        proc = PenbalProcess([*options, f"127.0.0.1:{port}", self.backend.address],
                             listen_port=port, probe=False)
        self.addCleanup(proc.stop)
        return proc, port

    def wait_events(self, proc: PenbalProcess, event: str, count: int,
                    exactly: bool = True) -> None:
        """Wait until penbal logged C{count} C{event}s; fail at once if it exited."""
        wait_for(lambda: len(events(proc, event)) >= count or proc.process.poll() is not None,
                 20, f"{count} {event} events (log: {proc.log_path})")
        self.assertIsNone(proc.process.poll(), proc.log())
        if exactly:
            self.assertEqual(len(events(proc, event)), count)

    def hangup_survived(self, proc: PenbalProcess, port: int, event: str, count: int,
                        exactly: bool = True) -> None:
        """penbal logged C{count} C{event}s for the HUPs, still runs, relays, and stops with 0."""
        self.wait_events(proc, event, count, exactly)
        client = NamedClient(port)
        try:
            self.assertEqual((client.name, client.echo(b"after HUP")), ("b0", b"after HUP"))
        finally:
            client.close()
        self.assertEqual(proc.stop(), 0, proc.log())

    def test_without_config_file(self) -> None:
        """No -F (and no -C): SIGHUP is logged, nothing changes, and penbal still relays."""
        proc, port = self.penbal()
        NamedClient(port).close()  # running, not just listening
        proc.process.send_signal(signal.SIGHUP)
        self.wait_events(proc, "hangup-ignored", 1)
        proc.process.send_signal(signal.SIGHUP)  # and again: the handler stays
        self.hangup_survived(proc, port, "hangup-ignored", 2)
        said = events(proc, "hangup-ignored")[0]
        self.assertIn("no config file to re-read", said["log_format"])

    def test_all_through_start_up(self) -> None:
        """SIGHUP is handled before penbal listens, and HUPs sent all through start-up, from
        the moment penbal handles them until it listens and after, do not end it."""
        port = free_port()
        proc = PenbalProcess([f"127.0.0.1:{port}", self.backend.address])  # no waiting
        self.addCleanup(proc.stop)
        sent = 0
        deadline = time.monotonic() + 20
        while True:
            self.assertIsNone(proc.process.poll(), f"penbal exited: {proc.log()}")
            self.assertLess(time.monotonic(), deadline, "penbal did not listen within 20s")
            # In this order: a handler seen before "not listening yet" was there before it.
            handled = catches(proc.pid, signal.SIGHUP)
            if listening(port, proc.pid):
                break
            if handled:
                proc.process.send_signal(signal.SIGHUP)
                sent += 1
        self.assertGreater(sent, 0, "penbal listened before it handled SIGHUP")
        proc.process.send_signal(signal.SIGHUP)
        self.hangup_survived(proc, port, "hangup-ignored", 1, exactly=False)

    def test_the_moment_penbal_listens(self) -> None:
        """A SIGHUP that comes while penbal starts (it listens before its reactor runs)."""
        for _ in range(4):
            proc, port = self.penbal()
            proc.process.send_signal(signal.SIGHUP)
            self.hangup_survived(proc, port, "hangup-ignored", 1)

    def test_the_moment_penbal_listens_with_config_file(self) -> None:
        """With -F, an early SIGHUP re-reads the file once the reactor runs."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("conn_max 50\n")
        for _ in range(3):
            proc, port = self.penbal("-F", path)
            proc.process.send_signal(signal.SIGHUP)
            self.hangup_survived(proc, port, "reloaded", 1)
