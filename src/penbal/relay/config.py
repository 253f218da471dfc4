# -*- test-case-name: tests.relay.test_listener -*-
"""
The relay's settings that are fixed once penbal has started, built once at assembly
(L{penbal.tap}) and handed to the relay, which reads them from here and nowhere else.

What the control port can change at run time (the connect timeout, blacklist seconds,
C{--max-connections}, stubborn, the emergency server) is not here: it stays in the balancer's
L{penbal.balancer.Settings}, where those changes land.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """How the TCP relay runs, fixed at start-up."""

    #: Relay plain TCP legs on penbal's own transport (see leantransport.py): clients of a
    #: plain TCP port (PROXY-protocol clients too), and backends reached by direct
    #: connect.  Off (C{--relay-path twisted}), every leg runs on Twisted's own transports and
    #: penbal touches none of Twisted's internals.
    lean: bool = False
    #: Largest socket read of a lean transport, reached after a read fills its buffer (see
    #: leantransport.py).  Large reads pay only there: a read is sent on at once instead of
    #: being joined into a write buffer.
    read_size: int = 65536
    #: Seconds a connected backend has to send its first byte before the client is failed
    #: over (server-speaks-first protocols: a frozen MySQL node accepts and never greets);
    #: 0 = off, the client gets the backend as soon as it is connected.
    first_byte_timeout: float = 0.0
    #: Seconds a client may be held while no backend is usable (C{--queue-timeout}); 0: it is
    #: closed at once.
    queue_timeout: float = 0.0
    #: How many clients may be held at once (C{--queue-max}).
    queue_max: int = 1000
