# -*- test-case-name: tests.policies.test_options_policy -*-
"""
Tests of the selection options of C{twist penbal}: -r, -h, -W, --prio, --policy, -c, -T.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.options import Options
from penbal.policies.choice import PolicyChoice
from penbal.policies.hash import RendezvousHashPolicy
from penbal.policies.registry import make_policy
from penbal.policies.sticky import StickyPolicy
from penbal.policies.weight import WeightPolicy
from tests.policies.fixtures import context


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions([*args, "3306", "127.0.0.1:3307", "127.0.0.1:3308"])
    return options


class PolicyOptionsTests(SynchronousTestCase):
    def test_default_sticky_with_pen_table_size(self) -> None:
        """By default the policy is sticky, with a 2048-client table that never expires."""
        options = parse()
        self.assertEqual(options.policy_choice, PolicyChoice("sticky"))
        self.assertEqual((options["clients"], options["tracking"]), (2048, 0.0))

    def test_pen_flags(self) -> None:
        """Pen's flags choose the policy."""
        self.assertEqual(parse("-r").policy_choice, PolicyChoice("roundrobin"))
        self.assertEqual(parse("-W").policy_choice, PolicyChoice("sticky", "weight"))
        self.assertEqual(parse("-r", "-h").policy_choice, PolicyChoice("hash"))
        self.assertEqual(parse("--prio", "-r").policy_choice, PolicyChoice("prio"))

    def test_client_table_options(self) -> None:
        """-c and -T set the client table's size and tracking time."""
        options = parse("-c", "10", "-T", "30")
        self.assertEqual((options["clients"], options["tracking"]), (10, 30.0))

    def test_bad_client_table_size(self) -> None:
        """-c 0 is refused with one line."""
        e = self.assertRaises(SystemExit, parse, "-c", "0")
        self.assertIn("--clients", str(e))
        self.assertTrue(str(e).startswith("penbal: error: "))

    def test_conflicting_flags_one_line(self) -> None:
        """Two policies at once are refused with one line."""
        e = self.assertRaises(SystemExit, parse, "-W", "--prio")
        self.assertEqual(
            str(e),
            "penbal: error: -W/--weight and --prio conflict: expected at most one of "
            "-h/--hash, -W/--weight, --prio",
        )
        e = self.assertRaises(SystemExit, parse, "--policy", "random", "-W")
        self.assertIn("--policy random conflicts with -W/--weight", str(e))

    def test_unknown_policy(self) -> None:
        """An unknown --policy is refused, listing the known ones."""
        e = self.assertRaises(SystemExit, parse, "--policy", "nope")
        self.assertIn("unknown policy 'nope': expected one of ", str(e))
        self.assertIn("leastconn, prio, random, roundrobin, sticky, weight", str(e))

    def test_built_policy_follows_options(self) -> None:
        """The policy built from the options is the one the flags name."""
        clock = Clock()
        built = make_policy(parse("-W", "-c", "3").policy_choice, context(clock, clients=3))
        assert isinstance(built, StickyPolicy)
        self.assertIsInstance(built.base, WeightPolicy)
        self.assertEqual(built.table.size, 3)
        self.assertIsInstance(make_policy(parse("-r", "-h").policy_choice, context(clock)),
                              RendezvousHashPolicy)

    def test_list_policies(self) -> None:
        """--list-policies prints every built-in name with a description."""
        out = io.StringIO()
        options = Options()
        with redirect_stdout(out):
            self.assertRaises(SystemExit, options.parseOptions, ["--list-policies"])
        names = [line.split()[0] for line in out.getvalue().splitlines()]
        for name in ("hash", "leastconn", "prio", "random", "roundrobin", "sticky", "weight"):
            self.assertIn(name, names)
