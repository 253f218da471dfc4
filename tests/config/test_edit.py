# -*- test-case-name: tests.config.test_edit -*-
"""
Tests of commands applied to a configuration (pure data, no balancer).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import AdminState
from penbal.config.edit import EditError, apply_edit, mode_line, pen_flags
from penbal.config.model import BackendEntry, Configuration
from penbal.penctl.commands import Edit, parse_command
from penbal.policies.choice import PolicyChoice

POLICIES = {"sticky", "roundrobin", "hash", "weight", "prio", "leastconn", "random"}
TWO = Configuration(backends=(BackendEntry(BackendSpec("a", 1)), BackendEntry(BackendSpec("b", 2))))


def edit(config: Configuration, line: str) -> Configuration:
    command = parse_command(line)
    assert isinstance(command, Edit), command
    return apply_edit(config, command, POLICIES)


class BackendEditTests(SynchronousTestCase):
    """Edits of the server table."""

    def test_server_settings(self) -> None:
        """server N KEY VALUE changes only the named fields."""
        config = edit(TWO, "server 1 max 3 prio 2 acl 4")
        self.assertEqual(config.backends[1].spec, BackendSpec("b", 2, maxc=3, prio=2))
        self.assertEqual(config.backends[1].acl, 4)
        self.assertEqual(config.backends[0], TWO.backends[0])

    def test_state(self) -> None:
        """server N drain records the wanted admin state."""
        self.assertEqual(edit(TWO, "server 0 drain").backends[0].admin, AdminState.DRAIN)

    def test_add_remove_clear(self) -> None:
        """add appends, remove deletes, no servers empties."""
        config = edit(edit(TWO, "add c:3"), "remove 0")
        self.assertEqual([e.spec.host for e in config.backends], ["b", "c"])
        self.assertEqual(edit(config, "no servers").backends, ())

    def test_missing_server(self) -> None:
        """A server number past the table is an EditError naming the range."""
        with self.assertRaises(EditError) as caught:
            edit(TWO, "server 2 up")
        self.assertEqual(str(caught.exception), "no server 2: the table has servers 0 to 1")
        with self.assertRaises(EditError) as caught:
            edit(Configuration(), "remove 0")
        self.assertIn("the table has no servers", str(caught.exception))

    def test_retiring_entries(self) -> None:
        """A retiring backend cannot be changed, survives no servers, and can be removed now."""
        retiring = Configuration(backends=(BackendEntry(BackendSpec("a", 1), retiring=True),))
        with self.assertRaises(EditError):
            edit(retiring, "server 0 max 3")
        with self.assertRaises(EditError):
            edit(retiring, "remove 0")
        self.assertEqual(edit(retiring, "no servers"), retiring)
        self.assertEqual(edit(retiring, "remove 0 now").backends, ())


class PolicyEditTests(SynchronousTestCase):
    """Pen's selection flags and policy NAME."""

    def test_flags(self) -> None:
        """Pen's flags combine as Pen's command line does."""
        config = Configuration()
        self.assertEqual(pen_flags(config.policy), (False, None))
        config = edit(config, "weight")
        self.assertEqual(config.policy, PolicyChoice("sticky", "weight"))
        config = edit(config, "roundrobin")
        self.assertEqual(config.policy, PolicyChoice("weight"))
        self.assertEqual(mode_line(config), "no hash roundrobin no stubborn weight no prio")
        config = edit(config, "no weight")
        self.assertEqual(config.policy, PolicyChoice("roundrobin"))

    def test_no_for_another_flag_changes_nothing(self) -> None:
        """no hash while hash is off leaves even a non-Pen policy alone."""
        config = edit(Configuration(), "policy leastconn")
        self.assertEqual(edit(config, "no hash"), config)
        self.assertEqual(edit(config, "roundrobin"), config)
        self.assertEqual(edit(config, "no roundrobin").policy, PolicyChoice("sticky"))

    def test_unknown_policy(self) -> None:
        """An unknown policy (or base) names the known ones."""
        with self.assertRaises(EditError) as caught:
            edit(Configuration(), "policy sticky nosuch")
        self.assertIn("unknown policy 'nosuch': expected one of hash, leastconn",
                      str(caught.exception))


class SettingEditTests(SynchronousTestCase):
    """Values, ACLs and the emergency server."""

    def test_values(self) -> None:
        """Each value lands in its field with its type."""
        config = Configuration()
        for line in ("timeout 2", "blacklist 0", "tracking 9", "clients_max 5", "conn_max 6",
                     "client_acl 1", "control_acl 2"):
            config = edit(config, line)
        self.assertEqual(
            (config.timeout, config.blacklist, config.tracking, config.clients_max,
             config.conn_max, config.client_acl, config.control_acl),
            (2.0, 0.0, 9.0, 5, 6, 1, 2),
        )
        self.assertIsInstance(config.conn_max, int)

    def test_acls(self) -> None:
        """acl appends to its list; no acl empties it."""
        config = edit(edit(Configuration(), "acl 4 permit 127.1.2.3"), "acl 4 deny ::1")
        self.assertEqual([e.format() for e in config.acls[4]],
                         ["permit 127.1.2.3/32", "deny ::1/128"])
        self.assertEqual(edit(config, "no acl 4").acls[4], ())

    def test_emergency(self) -> None:
        """emergency sets and no emergency clears the emergency server."""
        config = edit(Configuration(), "emergency 127.0.0.9:5")
        self.assertEqual(config.emergency, BackendSpec("127.0.0.9", 5))
        self.assertIsNone(edit(config, "no emergency").emergency)
