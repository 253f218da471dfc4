# -*- test-case-name: tests.policies.test_example_plugin -*-
"""
The example plugin of docs/writing-a-policy.rst, run exactly as shipped from a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.interfaces import IPolicyPlugin, ISelectionPolicy
from penbal.policies.choice import PolicyChoice
from penbal.policies.registry import make_policy, scan_policies
from tests.policies.dropins import plugin_folder
from tests.policies.fixtures import Driver, context

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "penbal" / "plugins" / "samesubnet.py"


class ExamplePluginTests(SynchronousTestCase):
    def setUp(self) -> None:
        plugin_folder(self, {"samesubnet": EXAMPLE.read_text()})
        self.scan = scan_policies()

    def test_discovered_without_problems(self) -> None:
        """The example is found as policy "samesubnet" and nothing is reported."""
        plugin = self.scan.plugins["samesubnet"]
        self.assertTrue(IPolicyPlugin.providedBy(plugin))
        self.assertEqual(self.scan.problems, [])

    def test_prefers_own_subnet(self) -> None:
        """Clients go to the backends of their /24 in turn, then fail over to the others."""
        policy = make_policy(PolicyChoice("samesubnet"), context(), self.scan.plugins)
        self.assertTrue(ISelectionPolicy.providedBy(policy))
        specs = [BackendSpec("127.0.1.1", 1), BackendSpec("127.0.2.1", 2),
                 BackendSpec("127.0.1.2", 3)]
        driver = Driver(policy, specs)
        firsts = [driver.order("127.0.1.77")[0] for _ in range(4)]
        self.assertEqual(sorted(set(firsts)), [0, 2])
        self.assertEqual(driver.order("127.0.1.77")[-1], 1)
        self.assertEqual(driver.order("127.0.2.9")[0], 1)
        self.assertEqual(sorted(driver.order("127.0.9.9")), [0, 1, 2])
