# -*- test-case-name: tests.policies.test_registry -*-
"""
Finding selection policies: every L{IPolicyPlugin} in the C{penbal.plugins} package.

Discovery is C{twisted.plugin.getPlugins}; before it, every module of the package is imported
once so that a broken one (an import error, an object that does not provide the interface, two
plugins with one name) is reported in one line naming its file, and skipped: the other
policies keep working.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from twisted.logger import Logger
from twisted.plugin import IPlugin, getPlugins
from twisted.python.modules import getModule

import penbal.plugins
from penbal.interfaces import IPolicyPlugin, ISelectionPolicy, PolicyContext
from penbal.policies.choice import PolicyChoice
from penbal.policies.naming import record_policy_name

log = Logger()

BUILT_IN_MODULE = "penbal.plugins.penbal_policies"

_reported: set[str] = set()


class PolicyError(Exception):
    """A policy could not be built; the message is one line."""


@dataclass
class PolicyScan:
    """What a scan of the plugin package found: usable plugins, and one line per problem."""

    plugins: dict[str, IPolicyPlugin] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)


def _looks_like_policy_plugin(value: object) -> bool:
    """An instance that was probably meant as a policy plugin but does not say so."""
    if isinstance(value, type | types.ModuleType | types.FunctionType):
        return False
    return IPlugin.providedBy(value) or callable(getattr(value, "makePolicy", None))


def _walk(
    package: types.ModuleType, scan: PolicyScan
) -> tuple[dict[int, tuple[str, str]], dict[str, str]]:
    """Import each plugin module; return where each plugin object lives, and broken modules."""
    owners: dict[int, tuple[str, str]] = {}
    broken: dict[str, str] = {}
    for child in getModule(package.__name__).iterModules():
        path = child.filePath.path
        try:
            module = child.load()
        except (Exception, SystemExit) as e:
            broken[child.name] = path
            scan.problems.append(
                f"policy plugin file {path} was skipped: it failed to import "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            )
            continue
        found = 0
        for attr, value in vars(module).items():
            if attr.startswith("__"):
                continue
            if IPolicyPlugin.providedBy(value):
                if not IPlugin.providedBy(value):
                    scan.problems.append(
                        f"policy plugin {attr} in {path} was skipped: it provides IPolicyPlugin "
                        "but not IPlugin (expected @implementer(IPlugin, IPolicyPlugin))"
                    )
                    found += 1
                    continue
                owners.setdefault(id(value), (child.name, f"{path} ({attr})"))
                found += 1
            elif _looks_like_policy_plugin(value):
                scan.problems.append(
                    f"policy plugin {attr} in {path} was skipped: it does not provide "
                    "IPolicyPlugin (expected @implementer(IPlugin, IPolicyPlugin))"
                )
                found += 1
        if not found:
            scan.problems.append(f"policy plugin file {path} defines no policy plugin")
    return owners, broken


@contextmanager
def _stubbed(modules: dict[str, str]) -> Iterator[None]:
    """Let getPlugins see broken modules as empty ones, so it does not log a traceback."""
    added = []
    for name in modules:
        if name not in sys.modules:
            parent, _, child = name.rpartition(".")
            stub = types.ModuleType(name, "a broken policy plugin (skipped)")
            sys.modules[name] = stub
            setattr(sys.modules[parent], child, stub)
            added.append((name, parent, child))
    try:
        yield
    finally:
        for name, parent, child in added:
            sys.modules.pop(name, None)
            if hasattr(sys.modules[parent], child):
                delattr(sys.modules[parent], child)


def _check(plugin: IPolicyPlugin, origin: str) -> str | None:
    """Why C{plugin} is unusable, or None."""
    name = getattr(plugin, "name", None)
    if not isinstance(name, str) or not name or name.split() != [name]:
        return f"policy plugin {origin} was skipped: its name {name!r} is not one word"
    if not callable(getattr(plugin, "makePolicy", None)):
        return f"policy plugin {name!r} in {origin} was skipped: it has no makePolicy method"
    return None


def scan_policies(package: types.ModuleType = penbal.plugins) -> PolicyScan:
    """Every usable policy plugin in C{package} by name, and every problem found."""
    scan = PolicyScan()
    owners, broken = _walk(package, scan)
    with _stubbed(broken):
        plugins = list(getPlugins(IPolicyPlugin, package))
    seen: set[int] = set()
    built_in: set[str] = set()
    for plugin in plugins:
        if id(plugin) in seen:
            continue
        seen.add(id(plugin))
        module, origin = owners.get(id(plugin), ("", repr(plugin)))
        problem = _check(plugin, origin)
        if problem is not None:
            scan.problems.append(problem)
            continue
        name = plugin.name
        if name in scan.plugins:
            kept = scan.origins[name]
            if module == BUILT_IN_MODULE and name not in built_in:
                # A third party cannot take a built-in policy's name.
                kept, origin = origin, kept
                scan.plugins[name] = plugin
                scan.origins[name] = kept
                built_in.add(name)
            scan.problems.append(
                f"two policy plugins are named {name!r}: kept {kept}, skipped {origin}"
            )
            continue
        scan.plugins[name] = plugin
        scan.origins[name] = origin
        if module == BUILT_IN_MODULE:
            built_in.add(name)
    return scan


def find_policies(package: types.ModuleType = penbal.plugins) -> dict[str, IPolicyPlugin]:
    """All usable policy plugins by name; each problem is logged once per process."""
    scan = scan_policies(package)
    for problem in scan.problems:
        if problem not in _reported:
            _reported.add(problem)
            log.error("{problem}", problem=problem)
    return scan.plugins


def _build(
    plugins: dict[str, IPolicyPlugin], name: str, context: PolicyContext
) -> ISelectionPolicy:
    """Build plugin C{name}, or raise L{PolicyError} saying why not."""
    plugin = plugins.get(name)
    if plugin is None:
        names = ", ".join(sorted(plugins))
        raise PolicyError(f"unknown policy {name!r}: expected one of {names}")
    try:
        policy = plugin.makePolicy(context)
    except Exception as e:
        raise PolicyError(f"policy {name!r} could not be built: {type(e).__name__}: {e}") from e
    if not ISelectionPolicy.providedBy(policy):
        raise PolicyError(
            f"policy {name!r} could not be built: makePolicy returned {policy!r}, "
            "which does not provide ISelectionPolicy"
        )
    record_policy_name(policy, name)
    return policy


def make_policy(
    choice: PolicyChoice,
    context: PolicyContext,
    plugins: dict[str, IPolicyPlugin] | None = None,
) -> ISelectionPolicy:
    """Build the chosen policy; a sticky policy's base policy is passed as settings["base"]."""
    if plugins is None:
        plugins = find_policies()
    if choice.base is not None:
        base = _build(plugins, choice.base, context)
        context = replace(context, settings={**context.settings, "base": base})
    return _build(plugins, choice.name, context)
