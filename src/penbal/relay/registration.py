# -*- test-case-name: tests.relay.test_leantransport -*-
"""
A lean transport's registration with the reactor: reading and writing switched on and off
with one C{epoll_ctl} each, and only when they change, through L{penbal.reactor}'s shortcuts
(the reactor's C{addReader} and kin, given the descriptor).  Kept apart from the relaying
itself (L{penbal.relay.leantransport}), which owns the state these methods read.
"""

from __future__ import annotations

from penbal.reactor import DescriptorShortcuts


class Registration:
    """C{startReading} and kin over C{self._fd} (a slotted mixin of the lean transport,
    which sets these attributes as it is made)."""

    __slots__ = ("_fd", "_fds", "_reading", "_writing")

    #: The descriptor, and how it (un)registers with the reactor.
    _fd: int
    _fds: DescriptorShortcuts
    #: Registered for reading, for writing; closed (never registered again).
    _reading: bool
    _writing: bool
    _closed: bool

    def startReading(self) -> None:
        if not self._reading and not self._closed:
            self._reading = True
            self._fds.start_reading(self, self._fd)

    def stopReading(self) -> None:
        if self._reading:
            self._reading = False
            self._fds.stop_reading(self, self._fd)

    def startWriting(self) -> None:
        if not self._writing and not self._closed:
            self._writing = True
            self._fds.start_writing(self, self._fd)

    def stopWriting(self) -> None:
        if self._writing:
            self._writing = False
            self._fds.stop_writing(self, self._fd)
