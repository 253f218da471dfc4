# -*- test-case-name: tests.config.test_file -*-
"""
Tests of the config file: reading, its errors, and the write -> load round trip.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState
from penbal.config.file import ConfigError, load, number, parse_lines, read_lines, render
from penbal.config.model import Configuration
from penbal.config.reconcile import capture, match, reconcile
from penbal.control.commands import parse_command
from penbal.control.executor import Executor
from penbal.control.language import SetStubborn
from penbal.policies.registry import find_policies
from tests.control.fixtures import make_runtime

POLICIES = set(find_policies())


def write(case: SynchronousTestCase, text: str | bytes) -> str:
    path = str(case.mktemp())
    with open(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    return path


class ReadTests(SynchronousTestCase):
    """Reading a file: commands in, or one error naming file, line and reason."""

    def test_commands_with_line_numbers(self) -> None:
        """Comments and blank lines are skipped; edits keep their line numbers."""
        edits = parse_lines("f", ["# comment", "", "stubborn", "  no ascii"])
        self.assertEqual(edits, [(3, SetStubborn(True))])

    def test_bad_line(self) -> None:
        """A bad line is an error with the file, the line number and the reason."""
        with self.assertRaises(ConfigError) as caught:
            parse_lines("/etc/p.cfg", ["stubborn", "timeout never"])
        self.assertEqual(
            str(caught.exception),
            "config file /etc/p.cfg line 2: invalid timeout (seconds) 'never': "
            "expected a number >= 0.001",
        )
        self.assertEqual((caught.exception.line, caught.exception.path), (2, "/etc/p.cfg"))

    def test_query_is_not_configuration(self) -> None:
        """Commands that only show something are refused in a file."""
        with self.assertRaises(ConfigError) as caught:
            parse_lines("f", ["servers"])
        self.assertIn("line 1: 'servers' is not a configuration command", str(caught.exception))

    def test_edit_error_has_line(self) -> None:
        """An edit that cannot apply (a missing server) names its line."""
        with self.assertRaises(ConfigError) as caught:
            load(Configuration(), write(self, "add 127.0.0.1:1\nserver 3 drain\n"), POLICIES)
        self.assertIn("line 2: no server 3", str(caught.exception))

    def test_missing_file(self) -> None:
        """A file that cannot be read is one error line."""
        with self.assertRaises(ConfigError) as caught:
            read_lines("/nonexistent/penbal.cfg")
        self.assertIn("config file /nonexistent/penbal.cfg: cannot read it", str(caught.exception))

    def test_not_utf8(self) -> None:
        """Binary junk is refused with the line it is on."""
        with self.assertRaises(ConfigError) as caught:
            read_lines(write(self, b"stubborn\n\xff\xfe\n"))
        self.assertIn("line 2: not UTF-8 text", str(caught.exception))

    def test_applies_over_the_base(self) -> None:
        """The file's commands apply after the command line's configuration."""
        base = Configuration(timeout=3.0, blacklist=30.0)
        config = load(base, write(self, "timeout 5\nadd 127.0.0.1:3306\n"), POLICIES)
        self.assertEqual((config.timeout, config.blacklist), (5.0, 30.0))
        self.assertEqual([e.spec.address for e in config.backends], ["127.0.0.1:3306"])

    def test_numbers(self) -> None:
        """Whole numbers are written without a fraction, others exactly."""
        self.assertEqual([number(30.0), number(0.1), number(7)], ["30", "0.1", "7"])


class RoundTripTests(SynchronousTestCase):
    """write, then load into a freshly started penbal, gives the same state."""

    def configure(self) -> str:
        """Change every kind of setting on a running penbal; return what write writes."""
        runtime, _ = make_runtime()
        executor = Executor(runtime)
        for line in [
            "policy sticky hash", "stubborn", "timeout 0.25", "blacklist 7", "conn_max 99",
            "tracking 60", "clients_max 100", "emergency [::1]:4999:1:2:3:4",
            "acl 1 permit 127.0.0.0/8", "acl 1 deny 0.0.0.0/0", "acl 9 permit ::1",
            "client_acl 1", "control_acl 9", "add 127.0.0.1:4002:5:6:7:8",
            "add [::1]:4003", "remove 0", "server 0 drain", "server 1 down", "server 2 acl 1",
            "server 1 weight 4",
        ]:
            reply = executor.execute(parse_command(line), "test", line)
            self.assertFalse(reply.failed, (line, reply.lines))
        self.expected = capture(runtime)
        return render(self.expected, runtime.now(), runtime.version)

    def test_round_trip(self) -> None:
        """Loading the written file into a penbal started from the command line reproduces it."""
        path = write(self, self.configure())
        fresh, _ = make_runtime()
        reconcile(fresh, match(load(fresh.base, path, POLICIES), fresh))
        self.assertEqual(capture(fresh), self.expected)
        self.assertEqual(
            [b.admin for b in fresh.balancer.pool],
            [AdminState.DRAIN, AdminState.DOWN, AdminState.UP],
        )

    def test_reload_of_the_written_file_changes_nothing(self) -> None:
        """Applying the file to the penbal that wrote it is no change at all."""
        runtime, _ = make_runtime()
        executor = Executor(runtime)
        for line in ("server 1 drain", "add 127.0.0.1:4005", "roundrobin", "acl 2 deny ::1"):
            executor.execute(parse_command(line), "test", line)
        path = write(self, render(capture(runtime), runtime.now(), runtime.version))
        changes = reconcile(runtime, match(load(runtime.base, path, POLICIES), runtime))
        self.assertEqual(changes, [])

    def test_written_file_reads_back(self) -> None:
        """Every line write produces is a valid command."""
        for line in self.configure().splitlines():
            self.assertNotIn("BadCommand", type(parse_command(line)).__name__, line)
