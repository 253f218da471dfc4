# -*- test-case-name: tests.policies.test_choice -*-
"""
Tests of how Pen's selection flags and --policy resolve to a policy.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.policies.choice import PolicyChoice, PolicyChoiceError, choose_policy


class ChoosePolicyTests(SynchronousTestCase):
    def test_default_is_sticky(self) -> None:
        """No flag: Pen's default, the client table over round-robin."""
        self.assertEqual(choose_policy(None), PolicyChoice("sticky"))

    def test_roundrobin_flag(self) -> None:
        """-r alone: round-robin without the client table."""
        self.assertEqual(choose_policy(None, roundrobin=True), PolicyChoice("roundrobin"))

    def test_algorithm_flags_keep_client_table(self) -> None:
        """-h, -W and --prio without -r keep Pen's client table in front."""
        self.assertEqual(choose_policy(None, hash=True), PolicyChoice("sticky", "hash"))
        self.assertEqual(choose_policy(None, weight=True), PolicyChoice("sticky", "weight"))
        self.assertEqual(choose_policy(None, prio=True), PolicyChoice("sticky", "prio"))

    def test_algorithm_flags_with_r(self) -> None:
        """-r with -h, -W or --prio is that policy alone, as in Pen."""
        self.assertEqual(choose_policy(None, True, hash=True), PolicyChoice("hash"))
        self.assertEqual(choose_policy(None, True, weight=True), PolicyChoice("weight"))
        self.assertEqual(choose_policy(None, True, prio=True), PolicyChoice("prio"))

    def test_two_algorithms_conflict(self) -> None:
        """Two of -h, -W, --prio are refused in one line naming both."""
        e = self.assertRaises(PolicyChoiceError, choose_policy, None, False, True, True)
        self.assertEqual(
            str(e),
            "-h/--hash and -W/--weight conflict: expected at most one of -h/--hash, "
            "-W/--weight, --prio",
        )

    def test_policy_name(self) -> None:
        """--policy NAME names one policy exactly."""
        self.assertEqual(choose_policy("leastconn"), PolicyChoice("leastconn"))

    def test_policy_and_flag_conflict(self) -> None:
        """--policy with a Pen selection flag is refused in one line."""
        e = self.assertRaises(PolicyChoiceError, choose_policy, "hash", True)
        self.assertIn("--policy hash conflicts with -r/--roundrobin", str(e))
        self.assertNotIn("\n", str(e))

    def test_describe(self) -> None:
        """The start-up description names the base policy."""
        self.assertEqual(PolicyChoice("sticky", "weight").describe(),
                         "sticky (new clients by weight)")
        self.assertEqual(PolicyChoice("hash").describe(), "hash")
