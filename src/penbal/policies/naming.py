# -*- test-case-name: tests.test_balancer -*-
"""
What a policy object is called in log lines: the plugin name it was built under, if known.

L{penbal.policies.registry} records the name of every policy it builds; anything else (a
policy built by hand, in a test) is named by its class.  Kept apart from the registry so that
the balancer can name a policy without importing plugin discovery.
"""

from __future__ import annotations

import weakref

_names: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
_names_by_id: dict[int, tuple[object, str]] = {}  # for objects that take no weak reference


def record_policy_name(policy: object, name: str) -> None:
    """Remember that C{policy} was built by the plugin called C{name}."""
    try:
        _names[policy] = name
    except TypeError:
        _names_by_id[id(policy)] = (policy, name)


def policy_name(policy: object) -> str:
    """C{'NAME'} for a policy built by the registry, plus its class: for one log line."""
    cls = type(policy)
    where = f"{cls.__module__}.{cls.__qualname__}"
    try:
        name: str | None = _names.get(policy)
    except TypeError:
        kept = _names_by_id.get(id(policy))
        name = kept[1] if kept is not None and kept[0] is policy else None
    return f"policy {name!r} ({where})" if name is not None else f"policy {where}"
