# -*- test-case-name: tests.policies.test_registry -*-
"""
A ready-made L{IPolicyPlugin}: a name, a description and a function that builds the policy.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.plugin import IPlugin
from zope.interface import implementer

from penbal.interfaces import IPolicyPlugin, ISelectionPolicy, PolicyContext


@implementer(IPlugin, IPolicyPlugin)
class PolicyPlugin:
    """Describe a policy for discovery with C{getPlugins(IPolicyPlugin, penbal.plugins)}."""

    def __init__(
        self, name: str, description: str, build: Callable[[PolicyContext], ISelectionPolicy]
    ) -> None:
        self.name = name
        self.description = description
        self._build = build

    def makePolicy(self, context: PolicyContext) -> ISelectionPolicy:
        return self._build(context)
