# -*- test-case-name: tests.udp.test_relay -*-
"""
What a UDP session sent lately and got no answer to, kept so that a session moved off a
failed backend can send it again (see L{penbal.udp.relay} for when it does).
"""

from __future__ import annotations

from collections import deque

RESEND_WINDOW = 1.0
"""On a move, datagrams sent this recently and not answered may be sent again."""
RESEND_COUNT = 4
"""The most datagrams of a session sent again on a move, by default (C{--udp-resend})."""
RESEND_BYTES = 65536
"""... and the most bytes."""


class RecentDatagrams:
    """The last few unanswered datagrams of one session, with when each was sent; an answer
    clears them."""

    __slots__ = ("_bytes", "_items")

    def __init__(self) -> None:
        self._items: deque[tuple[float, bytes]] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def record(self, now: float, data: bytes, most: int) -> None:
        """C{data} was sent at C{now}; keep at most C{most} datagrams and L{RESEND_BYTES}."""
        items = self._items
        items.append((now, data))
        self._bytes += len(data)
        while len(items) > most or self._bytes > RESEND_BYTES:
            self._bytes -= len(items.popleft()[1])

    def clear(self) -> None:
        """Forget them (an answer came, or the session moved)."""
        self._items.clear()
        self._bytes = 0

    def within_window(self, now: float) -> list[bytes]:
        """Those sent at most L{RESEND_WINDOW} seconds before C{now}, oldest first."""
        return [data for sent, data in self._items if now - sent <= RESEND_WINDOW]
