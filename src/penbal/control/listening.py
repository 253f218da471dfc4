# -*- test-case-name: tests.control.test_listening -*-
"""
A service that listens on one endpoint at start-up (so that a port in use stops penbal with
one clear line) and stops listening, and closes its clients, at shutdown.  Used for the
control port and the HTTP status.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger
from twisted.python.failure import Failure

from penbal.service import StartupError, endpoint_error

log = Logger()


class ListeningService(Service):
    """Listen on C{description} with C{factory} while running."""

    def __init__(
        self, reactor: Any, description: str, factory: IProtocolFactory, what: str
    ) -> None:
        self._reactor = reactor
        self.description = description
        self.factory = factory
        self.what = what
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        self.listen()
        super().privilegedStartService()

    def startService(self) -> None:
        self.listen()
        super().startService()

    def listen(self) -> IListeningPort:
        """Listen now (at most once); L{StartupError} with one line if it cannot."""
        if self.port is not None:
            return self.port
        try:
            endpoint = serverFromString(self._reactor, self.description)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise endpoint_error(self.what, self.description, e) from None
        result: list[Any] = []
        endpoint.listen(self.factory).addBoth(result.append)
        if not result:
            raise StartupError(f"{self.what} on {self.description!r} did not listen at once")
        if isinstance(result[0], Failure):
            raise StartupError(
                f"cannot listen for the {self.what} on {self.description!r}: "
                f"{result[0].getErrorMessage()}"
            )
        self.port = result[0]
        log.info("penbal {what} listening on {address}", what=self.what,
                 address=self.port.getHost())
        return self.port

    def stopService(self) -> Deferred[None]:
        super().stopService()
        close_all = getattr(self.factory, "close_all", None)
        if close_all is not None:
            close_all()
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        stopped = port.stopListening()
        return stopped if isinstance(stopped, Deferred) else succeed(None)
