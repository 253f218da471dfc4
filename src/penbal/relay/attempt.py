# -*- test-case-name: tests.relay.test_connect -*-
"""
The two small interfaces between a connector and whoever asked it for a connection (see
L{penbal.relay.connect}), on their own so that every connector, direct connect's one-socket
attempt included, can name them without importing the others.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.interfaces import IProtocol


class Attempt(Protocol):
    """What a connector reports one connection attempt to (a dial)."""

    def made(self) -> IProtocol:
        """The connection is up: the protocol to run on it (its C{makeConnection} follows)."""

    def failed(self, why: str) -> None:
        """The connection could not be made (refused, timed out...): C{why} in words."""


class Connecting(Protocol):
    """An attempt in progress."""

    def stopConnecting(self) -> None:
        """The client went away: drop the attempt quietly."""
