# -*- test-case-name: tests.control.test_protocol -*-
"""
Pen's control protocol on a socket: a client sends command lines and gets the answers.

As with Pen (and so with Pen's own C{penctl}), the connection closes once the lines received so
far are answered; after C{prompt} (HAProxy's word) it stays open for more, with a C{> } prompt,
until C{quit} or the client closes.  A client that the control ACL does not permit gets one
error line and is disconnected before it can send anything.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IAddress, IHalfCloseableProtocol, IReactorTime
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.control.executor import Executor, error
from penbal.penctl.commands import parse_command

log = Logger(namespace="penbal.control")

#: A client that sends nothing for this long is disconnected (in prompt mode too).
IDLE_TIMEOUT = 300.0
PROMPT = b"> "


def describe_peer(address: IAddress | None) -> tuple[str, str]:
    """(host for the ACL, who for the log) of a control client."""
    host = getattr(address, "host", None)
    if isinstance(host, str):
        return host, f"{host}:{getattr(address, 'port', 0)}"
    return "unix", "unix socket client"


@implementer(IHalfCloseableProtocol)
class ControlProtocol(LineReceiver, TimeoutMixin):
    """One control connection."""

    delimiter = b"\n"
    MAX_LENGTH = 4096
    transport: Any

    def __init__(self, factory: ControlFactory) -> None:
        self.factory = factory
        self.who = "?"
        self.refused = False
        self.closing = False
        self.prompting = False
        self.answered = False

    def callLater(self, period: float, func: Any) -> Any:
        return self.factory.clock.callLater(period, func)

    def connectionMade(self) -> None:
        host, self.who = describe_peer(self.transport.getPeer())
        runtime = self.factory.executor.runtime
        if not runtime.admits_control(host):
            self.refused = True
            log.warn("control: refused {who}: not permitted by control_acl {acl}",
                     who=self.who, acl=runtime.control_acl, penbal_event="control-refused")
            self.sendLine(f"error: {host} is not permitted by the control ACL".encode())
            self.transport.loseConnection()
            return
        self.factory.clients.add(self)
        self.setTimeout(IDLE_TIMEOUT)

    def lineReceived(self, line: bytes) -> None:
        if self.refused or self.closing:
            return
        self.resetTimeout()
        text = line.decode("utf-8", "replace").rstrip("\r")
        reply = self.factory.executor.execute(parse_command(text), self.who, text)
        for answer in reply.lines:
            self.sendLine(answer.encode("utf-8", "replace"))
        if reply.prompt is not None:
            self.prompting = reply.prompt
        if reply.close:
            self.closing = True
        self.answered = True
        if self.prompting and not self.closing:
            self.transport.write(PROMPT)

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self._maybe_close()

    def _maybe_close(self) -> None:
        if self.refused:
            return
        if self.closing or (self.answered and not self.prompting):
            self.closing = True
            self.transport.loseConnection()

    def lineLengthExceeded(self, line: bytes) -> None:
        self.sendLine(
            error(f"line too long: expected a command under {self.MAX_LENGTH} bytes")
            .lines[0].encode()
        )
        self.closing = True
        self.transport.loseConnection()

    def readConnectionLost(self) -> None:
        """The client sent all it will: answer a last line without a newline, then close."""
        rest = self.clearLineBuffer()
        if rest.strip() and not self.refused and not self.closing:
            self.lineReceived(rest)
        self.closing = True
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        log.info("control: {who} idle for {seconds:.0f}s: disconnected", who=self.who,
                 seconds=IDLE_TIMEOUT)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.setTimeout(None)
        self.factory.clients.discard(self)


class ControlFactory(ServerFactory):
    """Builds a L{ControlProtocol} per client; remembers them to close them at stop."""

    noisy = False

    def __init__(self, executor: Executor, clock: IReactorTime) -> None:
        self.executor = executor
        self.clock = clock
        self.clients: set[ControlProtocol] = set()

    def buildProtocol(self, addr: IAddress | None) -> ControlProtocol:
        return ControlProtocol(self)

    def close_all(self) -> None:
        """Disconnect every control client (at shutdown)."""
        for client in list(self.clients):
            client.transport.loseConnection()
