# -*- test-case-name: tests.workers.test_channel -*-
"""
What the main process and its workers say to each other, in AMP (C{twisted.protocols.amp})
over a socket pair: the main pushes the balancer's state and passes on a reopen of the access
log and a backend removed with its connections closed, a worker reports its figures, and a
spare worker is handed the listening socket of a worker that ended.

All are one-way (no answer): a push supersedes the previous one, a report too.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.protocols import amp

#: Bytes of one AMP value (AMP's limit is 65,535); longer documents take several keys.
CHUNK = 60000


class JSONDocument(amp.Argument):
    """Plain data as JSON, spread over as many AMP keys (C{name}, C{name.1}, ...) as needed."""

    def toBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        data = json.dumps(objects[name.decode("ascii")], separators=(",", ":")).encode()
        chunks = [data[at:at + CHUNK] for at in range(0, len(data), CHUNK)] or [b""]
        strings[name] = chunks[0]
        for number, chunk in enumerate(chunks[1:], 1):
            strings[b"%s.%d" % (name, number)] = chunk

    def fromBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        parts = [strings.pop(name)]
        number = 1
        while (key := b"%s.%d" % (name, number)) in strings:
            parts.append(strings.pop(key))
            number += 1
        objects[name.decode("ascii")] = json.loads(b"".join(parts))


class PushState(amp.Command):
    """Main to worker: the configuration (control commands, as a config file has them) and
    each backend's state that no command sets (health verdict, blacklisting)."""

    arguments = [(b"config", JSONDocument()), (b"state", JSONDocument())]
    requiresAnswer = False


class Report(amp.Command):
    """Worker to main: its connection figures, each backend's counters and the blacklistings
    it made itself (see L{penbal.workers.state})."""

    arguments = [(b"figures", JSONDocument())]
    requiresAnswer = False


class Serve(amp.Command):
    """Main to a spare worker: relay on this listening socket (it replaces a worker that
    ended).  The socket travels as a descriptor over the channel's unix socket."""

    arguments = [(b"listen", amp.Descriptor())]
    requiresAnswer = False


class ReopenAccessLog(amp.Command):
    """Main to worker: reopen the access log (the main process got SIGHUP or SIGUSR1, as
    logrotate sends once it moved the file).  The workers write the records of the
    connections they relay, so each must let go of the moved file."""

    requiresAnswer = False  # and no arguments


class RemoveNow(amp.Command):
    """Main to worker: a backend was taken out with its connections closed (C{remove N now}):
    do the same with the worker's own, before the next push (which no longer has it) would
    only let them drain.  C{index} is its number before, C{address} its C{HOST:PORT}."""

    arguments = [(b"index", amp.Integer()), (b"address", amp.Unicode())]
    requiresAnswer = False


class OneProtocolFactory(Factory):
    """The factory an adopted channel is built with: it hands out the one protocol it holds
    (each end of a channel is made before its socket is adopted)."""

    def __init__(self, protocol: Protocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: Any) -> Protocol:
        return self._protocol
