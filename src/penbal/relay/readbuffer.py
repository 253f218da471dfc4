# -*- test-case-name: tests.relay.test_pipe -*-
"""
The one buffer that piped reads land in (L{penbal.relay.leantransport}), shared by every lean
transport: the reactor runs one read at a time, and a piped read leaves the buffer before the
next one (written on, or copied into the peer's queue).  A large read then costs no
allocation: a fresh 1 MiB C{bytes} per C{recv} costs page faults each time (bulk relaying fell
to half speed with it).

A reader takes C{view} when C{size} is enough, else calls L{scratch}: two module lookups on
the hot path instead of a call.
"""

from __future__ import annotations

#: The buffer, a view of it, and its size (grown by the first piped read).
_buffer = bytearray()
view = memoryview(_buffer)
size = 0


def scratch(at_least: int) -> memoryview:
    """The shared buffer, grown to at least C{at_least} bytes first if need be."""
    global _buffer, view, size
    if size < at_least:
        _buffer = bytearray(at_least)
        view = memoryview(_buffer)
        size = at_least
    return view
