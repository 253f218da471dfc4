# -*- test-case-name: tests.control.test_executor -*-
"""
Tests of control commands carried out on a running balancer (a memory reactor).
"""

from __future__ import annotations

import json
import os
from typing import Any, cast

from twisted.internet.error import ConnectionDone
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState
from penbal.config.reconcile import capture
from penbal.control.executor import Executor, Reply
from penbal.interfaces import ClientInfo
from penbal.penctl.commands import parse_command
from penbal.policies.roundrobin import RoundRobinPolicy
from tests.control.fixtures import connect, make_runtime


class ExecutorCase(SynchronousTestCase):
    """A runtime over two backends, 127.0.0.1:4000 and :4001, and a log catcher."""

    def setUp(self) -> None:
        self.runtime, self.harness = make_runtime()
        self.executor = Executor(self.runtime)
        self.events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def run_line(self, line: str) -> Reply:
        return self.executor.execute(parse_command(line), "tester", line)

    def ok(self, line: str) -> list[str]:
        reply = self.run_line(line)
        self.assertFalse(reply.failed, reply.lines)
        return reply.lines

    def control_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("log_namespace") == "penbal.control"]


class ServerTableTests(ExecutorCase):
    """servers, server N, add, remove."""

    def test_servers_in_pens_format(self) -> None:
        """servers prints Pen's line per backend, numbered from 0, with the state."""
        self.assertEqual(
            self.ok("servers"),
            [
                "0 addr 127.0.0.1 port 4000 conn 0 max 0 hard 0 weight 0 prio 0 sx 0 rx 0 "
                "state up",
                "1 addr 127.0.0.1 port 4001 conn 0 max 0 hard 0 weight 0 prio 0 sx 0 rx 0 "
                "state up",
            ],
        )

    def test_show_one_server(self) -> None:
        """server N prints that backend's line; a missing one is an error."""
        self.assertTrue(self.ok("server 1")[0].startswith("1 addr 127.0.0.1 port 4001"))
        self.assertTrue(self.run_line("server 7").failed)

    def test_add_grows_the_table(self) -> None:
        """add appends a backend with the next number."""
        lines = self.ok("add 127.0.0.1:4002:5:6:7:8")
        pool = self.runtime.balancer.pool
        self.assertEqual(len(pool), 3)
        self.assertEqual((pool[2].index, pool[2].spec.maxc, pool[2].spec.prio), (2, 5, 8))
        self.assertEqual(lines, ["added server 2 127.0.0.1:4002:5:6:7:8"])

    def test_remove_idle_shrinks_at_once(self) -> None:
        """Removing a backend without connections takes it out and renumbers the rest."""
        second = self.runtime.balancer.pool[1]
        self.ok("remove 0")
        pool = self.runtime.balancer.pool
        self.assertEqual(list(pool), [second])
        self.assertEqual(second.index, 0)

    def test_remove_busy_drains_first(self) -> None:
        """A busy backend drains: no new connections, and it leaves when its last one ends."""
        front: Any = connect(self.harness)
        busy = front.backend
        lines = self.ok(f"remove {busy.index}")
        self.assertIn("drains, then leaves the table (1 connections left)", lines[0])
        pool = self.runtime.balancer.pool
        self.assertIn(busy, list(pool))
        self.assertEqual(busy.admin, AdminState.DRAIN)
        self.assertNotIn(busy, pool.candidates())
        self.assertIn("removing", self.ok("servers")[busy.index])
        front.transport.loseConnection()
        front.connectionLost(Failure(ConnectionDone()))
        self.assertNotIn(busy, list(pool))
        self.assertEqual(len(pool), 1)

    def test_remove_now_closes_connections(self) -> None:
        """remove N now drops a busy backend at once and closes its connections."""
        front: Any = connect(self.harness)
        busy = front.backend
        lines = self.ok(f"remove {busy.index} now")
        self.assertNotIn(busy, list(self.runtime.balancer.pool))
        self.assertTrue(front.transport.disconnecting)
        self.assertIn("1 connections closed", lines[0])

    def test_remove_now_tells_followers(self) -> None:
        """remove N now tells the runtime's followers (the workers of --workers N) which
        backend went, by its number before and its address; a draining remove does not."""
        told: list[tuple[int, str]] = []
        self.runtime.removed_now.append(lambda index, address: told.append((index, address)))
        pool = self.runtime.balancer.pool
        first, second = pool[0].address, pool[1].address
        self.ok("remove 0")  # idle: removed at once, but its connections were not closed
        self.assertEqual(told, [])
        self.ok("remove 0 now")
        self.assertEqual(told, [(0, second)])
        self.assertNotEqual(first, second)

    def test_a_removing_backend_refuses_other_changes(self) -> None:
        """While a backend drains out, changing it is refused; remove N now still works."""
        front: Any = connect(self.harness)
        index = front.backend.index
        self.ok(f"remove {index}")
        self.assertIn("being removed", self.run_line(f"server {index} up").lines[0])
        self.assertIn("already being removed", self.run_line(f"remove {index}").lines[0])
        self.ok(f"remove {index} now")
        self.assertEqual(len(self.runtime.balancer.pool), 1)

    def test_remove_missing(self) -> None:
        """Removing a server that does not exist is an error naming the table's range."""
        reply = self.run_line("remove 5")
        self.assertEqual(reply.lines, ["error: no server 5: the table has servers 0 to 1"])

    def test_no_servers(self) -> None:
        """no servers empties the table."""
        self.ok("no servers")
        self.assertEqual(len(self.runtime.balancer.pool), 0)


class ServerStateTests(ExecutorCase):
    """server N drain|up|down and its settings."""

    def test_drain(self) -> None:
        """A drained backend takes no new connection; its live ones stay."""
        front: Any = connect(self.harness)
        backend = front.backend
        self.assertEqual(
            self.ok(f"server {backend.index} drain"),
            [f"server {backend.index} {backend.address} is now draining"],
        )
        self.assertNotIn(backend, self.runtime.balancer.pool.candidates())
        self.assertIn(front, backend.live)
        self.assertFalse(front.transport.disconnecting)

    def test_down_and_up(self) -> None:
        """down takes a backend out; up puts it back and forgets its blacklisting."""
        backend = self.runtime.balancer.pool[0]
        self.ok("server 0 down")
        self.assertEqual(backend.state(self.runtime.now())[0], "down")
        backend.blacklist(self.runtime.now(), 30, "refused")
        self.ok("server 0 up")
        self.assertTrue(backend.usable(self.runtime.now()))

    def test_change_spec_keeps_connections(self) -> None:
        """Changing max and weight keeps the backend object, its counters and connections."""
        front: Any = connect(self.harness)
        backend = front.backend
        self.ok(f"server {backend.index} max 7 weight 3")
        self.assertEqual((backend.spec.maxc, backend.spec.weight), (7, 3))
        self.assertEqual(backend.counters.active, 1)
        self.assertIn(front, backend.live)

    def test_blacklist_and_clear(self) -> None:
        """server N blacklist T keeps it out for T seconds; blacklist 0 lets it back."""
        backend = self.runtime.balancer.pool[1]
        self.ok("server 1 blacklist 20")
        self.assertEqual(backend.state(self.runtime.now())[0], "blacklisted")
        self.assertEqual(backend.counters.failures, 0)
        self.ok("server 1 blacklist 0")
        self.assertTrue(backend.usable(self.runtime.now()))

    def test_server_acl_limits_clients(self) -> None:
        """server N acl A sends that backend only the clients list A permits."""
        self.ok("acl 1 permit 127.10.0.0/16")
        self.ok("server 0 acl 1")
        order = self.runtime.balancer.order(ClientInfo("127.168.1.1"))
        self.assertEqual([b.index for b in order], [1])
        order = self.runtime.balancer.order(ClientInfo("127.10.1.1"))
        self.assertEqual(sorted(b.index for b in order), [0, 1])
        self.ok("server 0 acl 0")
        self.assertIsNone(self.runtime.balancer.admits)


class SettingsTests(ExecutorCase):
    """Values, policy switches and access lists."""

    def test_values_print_like_pen(self) -> None:
        """A value command prints the value, before and after setting it."""
        self.assertEqual(self.ok("blacklist"), ["30"])
        self.assertEqual(self.ok("blacklist 10"), ["10"])
        self.assertEqual(self.runtime.balancer.settings.blacklist, 10.0)
        self.assertEqual(self.ok("timeout 0.5"), ["0.5"])
        self.assertEqual(self.ok("conn_max 9"), ["9"])
        self.assertEqual(self.runtime.balancer.settings.max_connections, 9)

    def test_tracking_rebuilds_the_policy(self) -> None:
        """tracking and clients_max go into a freshly built client table."""
        before = self.runtime.balancer.policy
        self.ok("tracking 60")
        self.ok("clients_max 10")
        self.assertIsNot(self.runtime.balancer.policy, before)
        self.assertEqual((self.runtime.context.tracking, self.runtime.context.clients), (60, 10))

    def test_pen_selection_flags(self) -> None:
        """roundrobin, hash and their 'no' forms switch the policy as Pen's flags do."""
        self.ok("roundrobin")
        self.assertIsInstance(self.runtime.balancer.policy, RoundRobinPolicy)
        self.assertEqual(self.ok("mode"),
                         ["no hash roundrobin no stubborn no weight no prio policy roundrobin"])
        self.ok("hash")
        self.assertEqual(self.runtime.policy.name, "hash")
        self.ok("no roundrobin")
        self.assertEqual((self.runtime.policy.name, self.runtime.policy.base), ("sticky", "hash"))
        self.ok("no hash")
        self.assertEqual((self.runtime.policy.name, self.runtime.policy.base), ("sticky", None))

    def test_policy_by_name(self) -> None:
        """policy NAME switches to any plugin; an unknown one is refused and nothing changes."""
        self.assertEqual(self.ok("policy leastconn"), ["policy leastconn"])
        self.assertEqual(self.ok("policy"), ["leastconn"])
        before = self.runtime.balancer.policy
        reply = self.run_line("policy nosuch")
        self.assertTrue(reply.failed)
        self.assertIn("unknown policy 'nosuch'", reply.lines[0])
        self.assertIs(self.runtime.balancer.policy, before)

    def test_stubborn(self) -> None:
        """stubborn and no stubborn."""
        self.ok("stubborn")
        self.assertTrue(self.runtime.balancer.settings.stubborn)
        self.ok("no stubborn")
        self.assertFalse(self.runtime.balancer.settings.stubborn)

    def test_emergency(self) -> None:
        """emergency HOST:PORT sets the emergency server; no emergency removes it."""
        self.ok("emergency 127.0.0.1:4999")
        self.assertEqual(self.ok("emergency"), ["127.0.0.1:4999"])
        self.ok("no emergency")
        self.assertIsNone(self.runtime.balancer.settings.emergency)

    def test_client_acl(self) -> None:
        """acl and client_acl decide which clients the relay admits."""
        self.ok("acl 2 deny 127.168.0.0/16")
        self.ok("acl 2 permit 0.0.0.0/0")
        self.assertTrue(self.runtime.admits_client("127.168.1.1"))
        self.assertEqual(self.ok("client_acl 2"), ["2"])
        self.assertFalse(self.runtime.admits_client("127.168.1.1"))
        self.assertTrue(self.runtime.admits_client("127.10.0.1"))
        self.ok("no acl 2")
        self.assertTrue(self.runtime.admits_client("127.168.1.1"))

    def test_http_mode(self) -> None:
        """http / no http turn X-Forwarded-For on and off for new clients, as -H does."""
        edges: Any = self.runtime.relays[0].edges  # type: ignore[attr-defined]
        self.assertEqual(self.ok("http"), ["http"])
        self.assertTrue(edges.forwarded)
        self.assertTrue(capture(self.runtime).http)
        self.assertIn("http", self.ok("write -"))
        self.assertEqual(self.ok("no http"), ["no http"])
        self.assertFalse(edges.forwarded)
        self.assertIn("no http", self.ok("write -"))

    def test_server_at_the_end_adds_one(self) -> None:
        """'server N address A port P' with N the table's length adds server N (Pen's form)."""
        self.ok("server 2 acl 0 address 127.0.0.1 port 4002 max 3 hard 4")
        self.assertEqual([(b.index, b.spec.format()) for b in self.runtime.balancer.pool][2],
                         (2, "127.0.0.1:4002:3:4:0:0"))
        reply = self.run_line("server 4 address 127.0.0.1 port 4004")
        self.assertEqual(reply.lines, ["error: no server 4: the table has servers 0 to 2"])

    def test_control_acl(self) -> None:
        """control_acl N guards the control port; unix clients are always let in."""
        self.ok("acl 3 permit 127.0.0.1")
        self.ok("control_acl 3")
        self.assertTrue(self.runtime.admits_control("127.0.0.1"))
        self.assertFalse(self.runtime.admits_control("127.0.0.2"))
        self.assertTrue(self.runtime.admits_control("unix"))


class RefusalTests(ExecutorCase):
    """Bad commands answer one error line and change nothing."""

    def test_bad_commands_change_nothing(self) -> None:
        """Unknown, malformed, impossible and unsupported commands change nothing."""
        before = capture(self.runtime)
        for line in ("frob", "server 9 drain", "server 1 max -1", "remove 4", "policy nosuch",
                     "acl 1 permit banana", "add nowhere", "log /tmp/pen.log", "debug 2",
                     "web_stats /tmp/w.html", "tcp_fastclose both", "client_acl \u00b2"):
            reply = self.run_line(line)
            self.assertEqual(len(reply.lines), 1, line)
            self.assertTrue(reply.lines[0].startswith("error: "), line)
        self.assertEqual(capture(self.runtime), before)

    def test_changes_are_logged(self) -> None:
        """Each change is logged with who asked, the line and what changed."""
        self.ok("server 1 drain")
        self.ok("servers")
        events = [e for e in self.control_events() if e.get("penbal_event") == "control"]
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["who"], "tester")
        self.assertEqual(events[0]["text"], "server 1 drain")
        self.assertIn("draining", events[0]["changes"])

    def test_refusals_are_logged(self) -> None:
        """A refused change is logged too."""
        self.run_line("server 9 drain")
        self.assertTrue(any("refused" in e.get("log_format", "") for e in self.control_events()))


class ReportTests(ExecutorCase):
    """status, recent, write, help and the connection commands."""

    def test_status_json(self) -> None:
        """status json is one line of JSON with the backends."""
        lines = self.ok("status json")
        self.assertEqual(len(lines), 1)
        data = json.loads(lines[0])
        self.assertEqual([b["address"] for b in data["backends"]],
                         ["127.0.0.1:4000", "127.0.0.1:4001"])

    def test_status_html_and_text(self) -> None:
        """status prints Pen's HTML page; status text a summary."""
        html = "\n".join(self.ok("status"))
        self.assertIn("<table", html)
        self.assertIn("127.0.0.1:4001", html)
        text = self.ok("status text")
        self.assertTrue(text[0].startswith("penbal "))
        self.assertEqual(len(text), 3)

    def test_recent(self) -> None:
        """recent lists clients seen lately, live and ended."""
        front: Any = connect(self.harness, "127.10.9.9", 1234)
        self.assertIn("127.10.9.9 connects 1", self.ok("recent")[0])
        front.connectionLost(Failure(ConnectionDone()))
        self.assertIn("127.10.9.9 connects 1", self.ok("recent 60")[0])

    def test_write_dash_prints(self) -> None:
        """write - prints the configuration as commands."""
        self.ok("server 1 drain")
        lines = self.ok("write -")
        self.assertIn("add 127.0.0.1:4001:0:0:0:0", lines)
        self.assertIn("server 1 drain", lines)

    def test_write_file(self) -> None:
        """write FILE writes it; write alone writes the -F file, or says there is none."""
        path = self.mktemp()
        self.assertEqual(self.ok(f"write {path}"), [f"wrote {path}"])
        with open(path) as f:
            self.assertIn("no servers\n", f.read())
        self.assertIn("no config file", self.run_line("write").lines[0])
        self.runtime.config_path = path
        os.unlink(path)
        self.ok("write")
        self.assertTrue(os.path.exists(path))

    def test_write_unwritable(self) -> None:
        """A file that cannot be written is an error line."""
        reply = self.run_line("write /nonexistent-dir/x.cfg")
        self.assertTrue(reply.failed)
        self.assertIn("cannot write /nonexistent-dir/x.cfg", reply.lines[0])

    def test_reload(self) -> None:
        """reload runs the reloader, or says there is no config file."""
        self.assertIn("no config file", self.run_line("reload").lines[0])
        self.runtime.reload = lambda: "reloaded x: no change"
        self.assertEqual(self.ok("reload"), ["reloaded x: no change"])

    def test_exit(self) -> None:
        """exit asks for a graceful stop and closes the connection."""
        stopped: list[bool] = []
        self.assertTrue(self.run_line("exit").failed)
        self.runtime.stop = lambda: stopped.append(True)
        reply = self.run_line("exit")
        self.assertTrue(reply.close)
        self.assertEqual(stopped, [True])

    def test_help_prompt_quit(self) -> None:
        """help lists the commands; prompt and quit steer the connection."""
        self.assertGreater(len(self.ok("help")), 10)
        self.assertTrue(self.run_line("prompt").prompt)
        self.assertTrue(self.run_line("quit").close)

    def test_show_values(self) -> None:
        """listen, pid and log answer one line."""
        self.assertEqual(self.ok("listen"), ["tcp:3306"])
        self.assertEqual(self.ok("pid"), ["4242"])
        self.assertEqual(len(self.ok("log")), 1)

    def test_ignored_pen_commands(self) -> None:
        """Pen commands that mean nothing here answer nothing and change nothing."""
        before = capture(self.runtime)
        self.assertEqual(self.ok("no ascii"), [])
        self.assertEqual(self.run_line("log /tmp/pen.log").lines, [
            "error: log FILE is not supported: the access log is set at start-up (--access-log)"])
        self.assertEqual(capture(self.runtime), before)
