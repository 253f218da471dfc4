# -*- test-case-name: tests.policies.test_registry -*-
"""
Tests of policy discovery: built-in and third-party plugins, and broken ones.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from penbal.interfaces import IPolicyPlugin, ISelectionPolicy
from penbal.policies.choice import PolicyChoice
from penbal.policies.prio import PrioPolicy
from penbal.policies.registry import PolicyError, find_policies, make_policy, scan_policies
from penbal.policies.roundrobin import RoundRobinPolicy
from penbal.policies.sticky import StickyPolicy
from tests.policies.dropins import good_plugin, plugin_folder
from tests.policies.fixtures import context

BUILT_IN = {"sticky", "roundrobin", "hash", "weight", "prio", "leastconn", "random"}


class DiscoveryTests(SynchronousTestCase):
    def test_built_ins_found(self) -> None:
        """Every built-in policy is found, with a one-line description, and no problem."""
        scan = scan_policies()
        self.assertTrue(set(scan.plugins) >= BUILT_IN)
        for name in BUILT_IN:
            plugin = scan.plugins[name]
            self.assertTrue(IPolicyPlugin.providedBy(plugin))
            self.assertTrue(plugin.description and "\n" not in plugin.description)
        self.assertEqual(scan.problems, [])

    def test_each_built_in_builds(self) -> None:
        """Each built-in plugin builds an ISelectionPolicy."""
        for name, plugin in find_policies().items():
            if name in BUILT_IN:
                self.assertTrue(ISelectionPolicy.providedBy(plugin.makePolicy(context())))

    def test_third_party_found(self) -> None:
        """A module in a penbal/plugins folder added to the path is discovered."""
        plugin_folder(self, {"acme": good_plugin("acme-prio")})
        self.assertIn("acme-prio", find_policies())

    def test_import_error_named_and_skipped(self) -> None:
        """A plugin file that fails to import is reported with its path; others still work."""
        folder = plugin_folder(self, {
            "broken": "import no_such_module_anywhere\n",
            "fine": good_plugin("fine-policy"),
        })
        scan = scan_policies()
        self.assertIn("fine-policy", scan.plugins)
        self.assertTrue(set(scan.plugins) >= BUILT_IN)
        [problem] = scan.problems
        self.assertIn(str(folder), problem)
        self.assertIn("broken_", problem)
        self.assertIn("failed to import (ModuleNotFoundError: No module named", problem)
        self.assertNotIn("\n", problem)

    def test_syntax_error_named(self) -> None:
        """A syntax error is reported in one line naming the file."""
        plugin_folder(self, {"typo": "def broken(:\n"})
        [problem] = scan_policies().problems
        self.assertIn("typo_", problem)
        self.assertIn("SyntaxError", problem)

    def test_missing_interface_named(self) -> None:
        """An object that looks like a plugin but does not provide IPolicyPlugin is reported."""
        plugin_folder(self, {"nointerface": '''
            class Mine:
                name = "mine"
                description = "no @implementer"
                def makePolicy(self, context):
                    return None
            mine = Mine()
        '''})
        [problem] = scan_policies().problems
        self.assertIn("policy plugin mine in ", problem)
        self.assertIn("does not provide IPolicyPlugin", problem)
        self.assertNotIn("mine", scan_policies().plugins)

    def test_policy_interface_without_iplugin(self) -> None:
        """Providing IPolicyPlugin without IPlugin is reported (getPlugins would not see it)."""
        plugin_folder(self, {"noiplugin": '''
            from zope.interface import implementer
            from penbal.interfaces import IPolicyPlugin
            @implementer(IPolicyPlugin)
            class Half:
                name = "half"
                description = "half declared"
                def makePolicy(self, context):
                    return None
            half = Half()
        '''})
        [problem] = scan_policies().problems
        self.assertIn("provides IPolicyPlugin but not IPlugin", problem)

    def test_empty_module_named(self) -> None:
        """A plugin file that defines no plugin at all is reported."""
        folder = plugin_folder(self, {"empty": "X = 1\n"})
        [problem] = scan_policies().problems
        self.assertIn(str(folder), problem)
        self.assertIn("defines no policy plugin", problem)

    def test_two_with_one_name(self) -> None:
        """Two plugins with one name: one line names both files, the first is kept."""
        folder = plugin_folder(self, {
            "first": good_plugin("twin"),
            "second": good_plugin("twin"),
        })
        scan = scan_policies()
        self.assertIn("twin", scan.plugins)
        [problem] = scan.problems
        self.assertIn("two policy plugins are named 'twin'", problem)
        self.assertEqual(problem.count(str(folder)), 2)

    def test_built_in_name_cannot_be_taken(self) -> None:
        """A third-party plugin named like a built-in is skipped; the built-in stays."""
        plugin_folder(self, {"impostor": good_plugin("sticky")})
        scan = scan_policies()
        [problem] = scan.problems
        self.assertIn("two policy plugins are named 'sticky'", problem)
        self.assertIn("impostor_", problem.split("skipped")[1])
        self.assertIsInstance(scan.plugins["sticky"].makePolicy(context()), StickyPolicy)

    def test_bad_name(self) -> None:
        """A plugin whose name is not one word is skipped and reported."""
        plugin_folder(self, {"spaced": good_plugin("two words")})
        scan = scan_policies()
        [problem] = scan.problems
        self.assertIn("'two words' is not one word", problem)

    def test_problems_logged_once(self) -> None:
        """find_policies logs each problem once per process, as an error."""
        plugin_folder(self, {"logged": "raise RuntimeError('boom')\n"})
        with capturedLogs() as events:
            find_policies()
            find_policies()
        errors = [e for e in events if "logged_" in str(e.get("problem", ""))]
        self.assertEqual(len(errors), 1)
        self.assertIn("RuntimeError: boom", errors[0]["problem"])


class MakePolicyTests(SynchronousTestCase):
    def test_sticky_gets_base(self) -> None:
        """A sticky choice with a base builds the base and passes it in."""
        policy = make_policy(PolicyChoice("sticky", "prio"), context(Clock()))
        assert isinstance(policy, StickyPolicy)
        self.assertIsInstance(policy.base, PrioPolicy)

    def test_sticky_default_base(self) -> None:
        """Plain sticky is over round-robin."""
        policy = make_policy(PolicyChoice("sticky"), context(Clock()))
        assert isinstance(policy, StickyPolicy)
        self.assertIsInstance(policy.base, RoundRobinPolicy)

    def test_unknown(self) -> None:
        """An unknown name is a one-line PolicyError listing the known names."""
        e = self.assertRaises(PolicyError, make_policy, PolicyChoice("nope"), context())
        self.assertIn("unknown policy 'nope': expected one of", str(e))

    def test_make_policy_raises(self) -> None:
        """A plugin whose makePolicy raises gives a PolicyError naming it."""
        plugin_folder(self, {"raising": '''
            from penbal.policies.plugin import PolicyPlugin
            def build(context):
                raise ValueError("needs a setting")
            plugin = PolicyPlugin("raising", "raises", build)
        '''})
        e = self.assertRaises(PolicyError, make_policy, PolicyChoice("raising"), context())
        self.assertEqual(
            str(e), "policy 'raising' could not be built: ValueError: needs a setting"
        )

    def test_make_policy_returns_wrong_thing(self) -> None:
        """A plugin whose makePolicy returns a non-policy gives a PolicyError."""
        plugin_folder(self, {"wrongtype": '''
            from penbal.policies.plugin import PolicyPlugin
            plugin = PolicyPlugin("wrongtype", "returns a string", lambda context: "policy")
        '''})
        e = self.assertRaises(PolicyError, make_policy, PolicyChoice("wrongtype"), context())
        self.assertIn("does not provide ISelectionPolicy", str(e))
