# -*- test-case-name: tests.control.test_listening -*-
"""
Tests of the listening service used by the control port and the HTTP status.
"""

from __future__ import annotations

import os
import socket
import stat

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase

from penbal.control.endpoint import parse_endpoint
from penbal.control.listening import ListeningService
from penbal.service import StartupError
from penbal.testing.process import unix_socket_path


class ListeningTests(TestCase):
    """Real sockets on loopback."""

    def test_port_in_use(self) -> None:
        """A port already taken stops start-up with one line."""
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        service = ListeningService(reactor, parse_endpoint(str(port), "x"),
                                   Factory.forProtocol(Protocol), "control port")
        with self.assertRaises(StartupError) as caught:
            service.startService()
        self.assertIn("cannot listen for the control port", str(caught.exception))

    def test_unix_socket_mode(self) -> Deferred[None]:
        """A unix control socket is created with mode 600, and removed at stop."""
        path = unix_socket_path("control", self.addCleanup)
        service = ListeningService(reactor, parse_endpoint(f"unix:{path}", "x"),
                                   Factory.forProtocol(Protocol), "control port")
        service.startService()
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        stopped: Deferred[None] = service.stopService()
        return stopped
