# -*- test-case-name: tests.policies.test_registry -*-
"""
Finding selection policies: every L{IPolicyPlugin} in the C{penbal.plugins} package.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.plugin import getPlugins

import penbal.plugins
from penbal.interfaces import IPolicyPlugin

log = Logger()


def find_policies() -> dict[str, IPolicyPlugin]:
    """All policy plugins by name; the first of two with one name wins, the other is logged."""
    found: dict[str, IPolicyPlugin] = {}
    for plugin in getPlugins(IPolicyPlugin, penbal.plugins):
        name = getattr(plugin, "name", None)
        if not isinstance(name, str) or not name:
            log.error("ignoring policy plugin {plugin!r}: it has no name", plugin=plugin)
            continue
        if name in found:
            log.error(
                "ignoring a second policy plugin named {name!r} ({plugin!r}); keeping {kept!r}",
                name=name,
                plugin=plugin,
                kept=found[name],
            )
            continue
        found[name] = plugin
    return found
