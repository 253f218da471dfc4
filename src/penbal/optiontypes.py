# -*- test-case-name: tests.test_options,tests.health.test_options,tests.edges.test_config -*-
"""
Coercers for C{usage.Options} parameters that name the option and what it expects, so a bad
value is one clear line at start-up ("expected a number >= 1 for --rise, got 'x'").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def number(kind: type, low: float, name: str, high: float | None = None) -> Callable[[str], Any]:
    """A C{kind} (int or float) from C{low} (to C{high}, if given)."""
    expected = f"a number >= {low}" if high is None else f"a number from {low} to {high}"

    def coerce(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"expected {expected} for {name}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"expected {expected} for {name}, got {text!r}")
        return value

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


def choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    """One of C{choices}, spelled exactly."""

    def coerce(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {'|'.join(choices)} for {name}, got {text!r}")
        return text

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce
