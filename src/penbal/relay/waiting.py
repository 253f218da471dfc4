# -*- test-case-name: tests.relay.test_legs -*-
"""
Two small interfaces a client's leg holds besides its peer, which refer to nothing of the
legs: what the client waits on before its backend is up (L{Pending}: a dial, or its place in
the wait queue), and HTTP mode's rewriter of what it sends (L{RequestRewriter}, implemented by
C{penbal.edges.forwarded.ForwardedRewriter}).
"""

from __future__ import annotations

from typing import Protocol as TypingProtocol


class Pending(TypingProtocol):
    """What a client without a backend waits on: a dial, or its place in the wait queue."""

    def cancel(self) -> None:
        """The client went away: stop."""


class RequestRewriter(TypingProtocol):
    """HTTP mode (C{-H}): rewrites what a client sends, and follows the answers."""

    @property
    def tunnel(self) -> bool:
        """An Upgrade or CONNECT was agreed to: bytes now pass untouched both ways."""

    @property
    def holding(self) -> bool:
        """Bytes are held until an answer says whether an upgrade was agreed to."""

    def feed(self, data: bytes) -> bytes:
        """What the client sent; returns what goes to the backend now."""

    def response(self, data: bytes) -> None:
        """What the backend answered (already relayed to the client)."""
