# -*- test-case-name: tests.relay.test_leantransport -*-
"""
A lean transport as a producer and a consumer (backpressure both ways): the producer it
writes for is paused while its queue is too full, and as a streaming producer itself it
stops and resumes reading when told.  Kept apart from the relaying itself
(L{penbal.relay.leantransport}), which owns the state these methods read and pauses or resumes
its producer as its queue fills and drains.
"""

from __future__ import annotations

from typing import Any

from penbal.relay.registration import Registration


class Producing(Registration):
    """C{IConsumer}'s C{registerProducer} and C{unregisterProducer}, and C{IPushProducer}'s
    C{pauseProducing}, C{resumeProducing} and C{stopProducing} (a slotted mixin of the lean
    transport, which sets these attributes as it is made)."""

    __slots__ = ("_paused", "_streaming", "disconnecting", "producer")

    #: What writes into this transport (the relayed connection's other transport), or None.
    producer: Any
    #: Whether C{producer} is a streaming one; whether this transport paused it (queue full).
    _streaming: bool
    _paused: bool
    #: The peer ended its stream; the transport is closing, or closed.
    _read_eof: bool
    disconnecting: bool

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if self.producer is not None:
            raise RuntimeError(f"{self!r} already has a producer")
        self.producer = producer
        self._streaming = streaming
        self._paused = False
        if not streaming:
            producer.resumeProducing()

    def unregisterProducer(self) -> None:
        self.producer = None
        self._paused = False

    def pauseProducing(self) -> None:
        self.stopReading()

    def resumeProducing(self) -> None:
        if not (self._read_eof or self.disconnecting):
            self.startReading()

    def stopProducing(self) -> None:
        """Close once flushed, on a later write event: Twisted's transports call this while
        they are themselves closing (or registering a producer after their loss), where a
        close that tells the protocol at once would re-enter them."""
        if self._closed:
            return
        self.disconnecting = True
        self.stopReading()
        self.startWriting()
