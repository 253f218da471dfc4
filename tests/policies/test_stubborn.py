# -*- test-case-name: tests.policies.test_stubborn -*-
"""
Tests of -s (stubborn) with every built-in policy: no failover from the first choice.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.policies.choice import PolicyChoice
from penbal.policies.registry import make_policy
from tests.policies.fixtures import context
from tests.relay.fixtures import RelayHarness

CHOICES = [
    PolicyChoice("sticky"),
    PolicyChoice("sticky", "weight"),
    PolicyChoice("roundrobin"),
    PolicyChoice("hash"),
    PolicyChoice("weight"),
    PolicyChoice("prio"),
    PolicyChoice("leastconn"),
    PolicyChoice("random"),
]


def harness_with(choice: PolicyChoice, stubborn: bool) -> RelayHarness:
    harness = RelayHarness(backends=3, stubborn=stubborn)
    harness.balancer.policy = make_policy(choice, context(harness.reactor))
    return harness


def refuse_last(harness: RelayHarness) -> int:
    """Refuse the last connect attempt; return the port it was for."""
    _, port, dial, _ = harness.last_dial()
    dial.clientConnectionFailed(harness.reactor.connectors[-1], Failure(ConnectionRefusedError()))
    return port


class StubbornTests(SynchronousTestCase):
    def test_stubborn_closes_client_with_every_policy(self) -> None:
        """With -s, a refused first choice closes the client: one attempt, whatever the policy."""
        for choice in CHOICES:
            harness = harness_with(choice, stubborn=True)
            _, client = harness.client()
            refuse_last(harness)
            self.assertTrue(client.disconnecting, choice)
            self.assertEqual(len(harness.reactor.tcpClients), 1, choice)

    def test_without_stubborn_fails_over_with_every_policy(self) -> None:
        """Without -s, the next backend of the policy's order is tried."""
        for choice in CHOICES:
            harness = harness_with(choice, stubborn=False)
            _, client = harness.client()
            first = refuse_last(harness)
            self.assertFalse(client.disconnecting, choice)
            self.assertEqual(len(harness.reactor.tcpClients), 2, choice)
            self.assertNotEqual(harness.last_dial()[1], first, choice)

    def test_stubborn_sticky_client_not_moved(self) -> None:
        """A sticky client's first choice is its own backend; with -s a refusal closes it."""
        harness = harness_with(PolicyChoice("sticky"), stubborn=True)
        harness.client("127.0.0.2")
        _, port, _, _ = harness.last_dial()
        harness.connect_backend()
        harness.client("127.0.0.2")
        self.assertEqual(harness.last_dial()[1], port)
        _, client = harness.client("127.0.0.2")
        refuse_last(harness)
        self.assertTrue(client.disconnecting)
