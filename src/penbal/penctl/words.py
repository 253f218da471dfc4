# -*- test-case-name: tests.penctl.test_commands -*-
"""
The words of a control command (L{penbal.penctl.commands}): server numbers, numbers with a
lower bound, access-list numbers and argument counts, each refused with a L{WordError} whose
message names the word and what was expected.
"""

from __future__ import annotations

from penbal.edges.acl import AclError, parse_acl_number
from penbal.optiontypes import is_digits, parse_float, parse_int


class WordError(Exception):
    """A word of a command is wrong; the parser turns it into a L{BadCommand} line."""


def show(word: str) -> str:
    """A user's word for an error message: quoted, printable, bounded."""
    return repr(word if len(word) <= 40 else word[:40] + "...")


def server_number(word: str) -> int:
    """A server's number in the table (from 0)."""
    if not is_digits(word) or len(word) > 9:
        raise WordError(f"invalid server number {show(word)}: expected a number from 0")
    return int(word)


def bounded_number(word: str, name: str, kind: type, low: float) -> float:
    """A finite number >= C{low}; whole when C{kind} is int."""
    bad = WordError(
        f"invalid {name} {show(word)}: expected a "
        f"{'whole number' if kind is int else 'number'} >= {low:g}"
    )
    if len(word) > 32:
        raise bad
    try:
        value = parse_int(word) if kind is int else parse_float(word)
    except ValueError:
        raise bad from None
    if value < low:
        raise bad
    return value


def acl_number(word: str) -> int:
    """An access-list number, 0 to 9."""
    try:
        return parse_acl_number(word)
    except AclError as e:
        raise WordError(str(e)) from None


def arity(words: list[str], low: int, high: int, form: str) -> None:
    """Between C{low} and C{high} arguments after the command word, else C{form}."""
    if not low <= len(words) - 1 <= high:
        raise WordError(f"wrong number of arguments to {words[0]!r}: expected {form}")
