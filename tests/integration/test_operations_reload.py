# -*- test-case-name: tests.integration.test_operations_reload -*-
"""
SIGHUP on a real penbal: a good config file is applied as a diff, a bad one is rejected whole.
"""

from __future__ import annotations

import signal

from tests.integration.operations import NamedClient, OperationsCase, wait_for


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
