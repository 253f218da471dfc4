# -*- test-case-name: tests.test_options,tests.health.test_options,tests.edges.test_config -*-
"""
Numbers as penbal reads them, and coercers for C{usage.Options} parameters that name the
option and what it expects, so a bad value is one clear line at start-up ("expected a number
>= 1 for --rise, got 'x'").

Every number penbal reads (options, backend specs, control commands, config files) is
checked here: ASCII digits only.  C{str.isdigit} also accepts a superscript two
(C{'\\u00b2'}, which C{int} then refuses) and an Arabic-Indic one (C{'\\u0661'}, which
C{int} reads as 1); C{float} also accepts C{'1_0'}, C{'nan'} and C{'inf'}.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_DIGITS = re.compile(r"[0-9]+")
_INTEGER = re.compile(r"[-+]?[0-9]+")
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def is_digits(text: str) -> bool:
    """True if C{text} is one or more ASCII digits, C{0} to C{9}, and nothing else."""
    return _DIGITS.fullmatch(text) is not None


def parse_int(text: str, signed: bool = False) -> int:
    """C{text} as a whole number written in ASCII digits (with a sign if C{signed}).

    Raises C{ValueError} for anything else.
    """
    if (_INTEGER if signed else _DIGITS).fullmatch(text) is None:
        raise ValueError(f"not a whole number: {text!r}")
    return int(text)


def parse_float(text: str) -> float:
    """C{text} as a finite decimal number in ASCII (C{3}, C{0.25}, C{-1.5}, C{1e3}).

    Raises C{ValueError} for anything else, including C{nan}, C{inf} and overflows.
    """
    if _DECIMAL.fullmatch(text) is None:
        raise ValueError(f"not a number: {text!r}")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def number(kind: type, low: float, name: str, high: float | None = None) -> Callable[[str], Any]:
    """A C{kind} (int or float) from C{low} (to C{high}, if given)."""
    expected = f"a number >= {low}" if high is None else f"a number from {low} to {high}"

    def coerce(text: str) -> Any:
        try:
            value = parse_int(text, signed=True) if kind is int else parse_float(text)
        except ValueError:
            raise ValueError(f"expected {expected} for {name}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"expected {expected} for {name}, got {text!r}")
        return value

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


def choice(
    name: str, choices: tuple[str, ...], aliases: dict[str, str] | None = None
) -> Callable[[str], str]:
    """One of C{choices}, spelled exactly (or one of its C{aliases})."""

    def coerce(text: str) -> str:
        if aliases and text in aliases:
            return aliases[text]
        if text not in choices:
            raise ValueError(f"expected one of {'|'.join(choices)} for {name}, got {text!r}")
        return text

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce
