# -*- test-case-name: tests.test_reactor -*-
"""
Tests of the lean epoll reactor and its plugin.
"""

from __future__ import annotations

import faulthandler
import os
import socket
import tempfile
import threading
from collections.abc import Callable

from twisted.application.reactors import getReactorTypes
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableDescriptor
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from penbal.reactor import (
    _LONGEST_POLL,
    LeanEPollReactor,
    PublicShortcuts,
    keeps_descriptor,
    shortcuts,
)


class Reader:
    """A read descriptor over one end of a socket pair, recording its reads."""

    def __init__(self, sock: socket.socket, fail: bool = False) -> None:
        self.sock = sock
        self.fail = fail
        self.reads = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return "Reader"

    def doRead(self) -> None:
        self.reads += 1
        self.sock.recv(100)
        if self.fail:
            raise RuntimeError("boom")

    def connectionLost(self, reason: object) -> None:
        pass


class SocketPairCase(SynchronousTestCase):
    """A lean reactor and a connected socket pair for each test."""

    def setUp(self) -> None:
        self.reactor = LeanEPollReactor()
        self.left, self.right = socket.socketpair()
        self.addCleanup(self.left.close)
        self.addCleanup(self.right.close)


class LeanReactorTests(SocketPairCase):
    """Dispatching without a log context, still safe."""

    def test_dispatches_reads(self) -> None:
        """A readable descriptor gets its doRead from one poll."""
        reader = Reader(self.left)
        self.reactor.addReader(reader)
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(reader.reads, 1)
        self.reactor.removeReader(reader)  # type: ignore[no-untyped-call]

    def test_handler_error_does_not_escape(self) -> None:
        """An exception in a handler is turned into a lost connection, not a crash."""
        reader = Reader(self.left, fail=True)
        self.reactor.addReader(reader)
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(reader.reads, 1)
        self.flushLoggedErrors(RuntimeError)

    def test_plugin(self) -> None:
        """twist --reactor penbal-epoll finds it."""
        names = {r.shortName for r in getReactorTypes()}
        self.assertIn("penbal-epoll", names)



class Writer(Reader):
    """A write descriptor recording its write events; C{lose} makes doWrite report a loss."""

    lose = False
    lost: object = None
    writes = 0

    def doWrite(self) -> object:
        self.writes += 1
        return ConnectionDone() if self.lose else None

    def connectionLost(self, reason: object) -> None:
        self.lost = reason


class LeanDispatchTests(SocketPairCase):
    """The lone-read and lone-write events go straight to the handler, with Twisted's rules."""

    def test_write_event(self) -> None:
        """A writable descriptor gets doWrite; a loss it returns disconnects it."""
        writer = Writer(self.left)
        self.reactor.addWriter(writer)
        self.reactor.doPoll(1)
        self.assertEqual((writer.writes, writer.lost), (1, None))
        writer.lose = True
        self.reactor.doPoll(1)
        self.assertIsInstance(writer.lost, Failure)
        self.assertNotIn(writer, self.reactor.getWriters())  # type: ignore[no-untyped-call]

    def test_read_error_disconnects(self) -> None:
        """A read handler that raises loses its connection (as in Twisted's dispatch)."""
        reader = Writer(self.left, fail=True)
        self.reactor.addReader(reader)
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIsInstance(reader.lost, Failure)
        self.assertNotIn(reader, self.reactor.getReaders())  # type: ignore[no-untyped-call]

    def test_raising_half_closeable_loses_the_connection(self) -> None:
        """A half-closeable read handler that raises C{ConnectionDone} loses its whole
        connection (C{connectionLost}), as in Twisted's dispatch, not only its read side."""

        @implementer(IHalfCloseableDescriptor)
        class HalfCloseable(Writer):
            read_lost: object = None

            def doRead(self) -> None:
                self.sock.recv(100)
                raise ConnectionDone()

            def readConnectionLost(self, reason: object) -> None:
                self.read_lost = reason

            def writeConnectionLost(self, reason: object) -> None:
                pass

        reader = HalfCloseable(self.left)
        self.reactor.addReader(reader)
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.flushLoggedErrors(ConnectionDone)
        self.assertIsNone(reader.read_lost)
        self.assertIsInstance(reader.lost, Failure)

    def test_closed_descriptor(self) -> None:
        """A descriptor whose fileno is -1 is disconnected instead of read."""
        reader = Writer(self.left)
        self.reactor.addReader(reader)
        self.right.send(b"x")
        reader.fileno = lambda: -1  # type: ignore[method-assign]
        self.reactor.doPoll(1)
        self.assertEqual(reader.reads, 0)
        self.assertIsInstance(reader.lost, Failure)

    def test_unregistered_in_the_same_batch(self) -> None:
        """A descriptor an earlier handler of the same poll unregistered gets no event."""
        other_left, other_right = socket.socketpair()
        self.addCleanup(other_left.close)
        self.addCleanup(other_right.close)
        first, second = Writer(self.left), Writer(other_left)
        for reader in (first, second):
            self.reactor.addReader(reader)

        def dropping_both(reader: Writer) -> Callable[[], None]:
            def read() -> None:
                Reader.doRead(reader)
                for each in (first, second):
                    self.reactor.removeReader(each)  # type: ignore[no-untyped-call]
            return read

        first.doRead = dropping_both(first)  # type: ignore[method-assign]
        second.doRead = dropping_both(second)  # type: ignore[method-assign]
        self.right.send(b"x")
        other_right.send(b"y")
        self.reactor.doPoll(1)
        self.assertEqual(first.reads + second.reads, 1)  # whichever came first
        self.assertEqual((first.lost, second.lost), (None, None))

    def test_hang_up_with_data_is_read(self) -> None:
        """A hang-up with data to read is a read first (as in Twisted's dispatch)."""
        reader = Writer(self.left)
        self.reactor.addReader(reader)
        self.right.send(b"x")
        self.right.close()
        self.reactor.doPoll(1)
        self.assertEqual(reader.reads, 1)
        self.assertIsNone(reader.lost)

    def test_hang_up_uses_twisted_dispatch(self) -> None:
        """Other events (here a hang-up of a descriptor registered for writing only) take
        Twisted's own path: a lost connection, no write."""
        writer = Writer(self.left)
        self.reactor.addWriter(writer)
        self.right.close()
        self.reactor.doPoll(1)
        self.assertEqual(writer.writes, 0)
        self.assertIsInstance(writer.lost, Failure)


class StaleEventTests(SocketPairCase):
    """An event polled for a socket that an earlier handler of the same batch closed is not
    given to the new socket that reuses its descriptor number."""

    def batch_that_reuses(self, register: Callable[[Writer], None]) -> list[Writer]:
        """Two descriptors writable in one poll; whichever is handled first closes the other
        and puts a new socket, registered with C{register}, on its number.  Returns the new
        descriptors (one per handled event: one, with the fix)."""
        other_left, other_right = socket.socketpair()
        self.addCleanup(other_left.close)
        self.addCleanup(other_right.close)
        first, second = Writer(self.left), Writer(other_left)
        newcomers: list[Writer] = []

        def replacing(victim: Writer) -> Callable[[], object]:
            def write() -> object:
                Writer.doWrite(first if victim is second else second)
                number = victim.fileno()
                self.reactor.removeWriter(victim)  # type: ignore[no-untyped-call]
                fresh, spare = socket.socketpair()
                self.addCleanup(fresh.close)
                self.addCleanup(spare.close)
                os.dup2(fresh.fileno(), number)  # the closed socket's number, reused
                victim.sock.detach()
                reused = socket.socket(fileno=number)
                self.addCleanup(reused.close)
                newcomer = Writer(reused)
                newcomers.append(newcomer)
                register(newcomer)
                return None
            return write

        first.doWrite = replacing(second)  # type: ignore[method-assign]
        second.doWrite = replacing(first)  # type: ignore[method-assign]
        for each in (first, second):
            self.reactor.addWriter(each)
        self.reactor.doPoll(1)
        self.assertEqual(first.writes + second.writes, 1)
        survivor = first if first.writes else second
        self.reactor.removeWriter(survivor)  # type: ignore[no-untyped-call]
        return newcomers

    def assert_untouched(self, newcomers: list[Writer]) -> None:
        self.assertEqual(len(newcomers), 1)
        newcomer = newcomers[0]
        self.assertEqual((newcomer.reads, newcomer.writes, newcomer.lost), (0, 0, None))
        self.reactor.doPoll(1)  # the next poll reports the new socket's own state
        self.assertEqual(newcomer.writes, 1)

    def test_public_registration(self) -> None:
        self.assert_untouched(self.batch_that_reuses(
            lambda w: self.reactor.addWriter(w)))

    def test_shortcut_registration(self) -> None:
        self.assert_untouched(self.batch_that_reuses(
            lambda w: self.reactor.start_writing(w, w.fileno())))

    def test_registered_between_polls(self) -> None:
        """A descriptor registered outside a batch gets the next poll's events."""
        reader = Writer(self.left)
        self.reactor.start_reading(reader, self.left.fileno())
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(reader.reads, 1)


class MainLoopTests(SocketPairCase):
    """The main loop skips the timed-call bookkeeping only when no timed call needs it; timed
    calls, calls from threads, stopping and errors behave as in Twisted's loop.  Each test
    runs a private reactor with a stop after 10 s as a deadline, and a watchdog outside the
    reactor (a loop that never returns would not run the deadline) that ends the test process
    with every thread's traceback after 60 s."""

    def run_reactor(self, deadline: bool = True) -> None:
        faulthandler.dump_traceback_later(60, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        if not deadline:
            self.reactor.run(installSignalHandlers=False)
            return
        stop = self.reactor.callLater(10, self.reactor.stop)
        self.reactor.run(installSignalHandlers=False)
        self.assertTrue(stop.active(), "the reactor ran into the test's deadline")
        stop.cancel()

    def counting(self, name: str) -> list[int]:
        """Count the calls of the reactor's method C{name}."""
        calls = [0]
        method = getattr(self.reactor, name)

        def counted(*args: object) -> object:
            calls[0] += 1
            return method(*args)

        setattr(self.reactor, name, counted)
        return calls

    def test_check(self) -> None:
        self.assertTrue(self.reactor.timing_ok)
        del self.reactor._newTimedCalls
        self.assertFalse(self.reactor.check_timing())

    def test_timed_calls_in_order(self) -> None:
        """Timed calls run in order, one added by another too, and stop ends the loop with
        the shutdown event fired."""
        seen: list[str] = []
        self.reactor.addSystemEventTrigger("before", "shutdown", seen.append, "shutdown")

        def second() -> None:
            seen.append("second")
            def added() -> None:
                seen.append("added")
                self.reactor.stop()

            self.reactor.callLater(0, added)

        self.reactor.callLater(0.02, second)
        self.reactor.callLater(0.01, seen.append, "first")
        self.run_reactor()
        self.assertEqual(seen, ["first", "second", "added", "shutdown"])

    def echo_rounds(self, rounds: int) -> tuple[Reader, list[int], list[int]]:
        """Run the reactor through C{rounds} reads, each answered by the next write, with a
        far timed call waiting; the reader, and the counts of bookkeeping and of polls."""
        self.reactor.callLater(3600, lambda: None)
        bookkeeping, polls = self.counting("runUntilCurrent"), self.counting("doIteration")
        reader = Reader(self.left)

        def echo() -> None:
            Reader.doRead(reader)
            if reader.reads < rounds:
                self.right.send(b"x")
            else:
                self.reactor.stop()

        reader.doRead = echo  # type: ignore[method-assign]
        self.reactor.addReader(reader)
        self.right.send(b"x")
        self.run_reactor()
        return reader, bookkeeping, polls

    def test_events_between_timed_calls(self) -> None:
        """Events while a far timed call waits take polls without the bookkeeping."""
        far: list[int] = []
        self.reactor.callLater(3600, far.append, 1)
        reader, bookkeeping, polls = self.echo_rounds(50)
        self.assertEqual((reader.reads, far), (50, []))
        self.assertGreaterEqual(polls[0], 50)
        self.assertLess(bookkeeping[0], 10)  # start, stop and the deadline's, not per poll

    def test_call_from_thread(self) -> None:
        """A call from another thread, made once the loop polls with no timed call due or
        added (from a read handler), runs at once, not at the next timed call."""
        self.reactor.callLater(3600, lambda: None)
        ran: list[str] = []
        threads: list[threading.Thread] = []

        def called() -> None:
            ran.append("called")
            self.reactor.stop()

        def from_thread() -> None:
            self.reactor.callFromThread(called)

        reader = Reader(self.left)

        def read() -> None:
            Reader.doRead(reader)
            self.assertEqual(self.reactor._newTimedCalls, [])
            threads.append(threading.Thread(target=from_thread))
            threads[0].start()

        reader.doRead = read  # type: ignore[method-assign]
        self.reactor.addReader(reader)
        self.right.send(b"x")
        self.run_reactor()  # the deadline (10 s) is the next timed call
        threads[0].join(10)
        self.assertEqual((ran, reader.reads), (["called"], 1))

    def test_error_is_logged_and_the_loop_goes_on(self) -> None:
        """An exception out of a poll is logged; the loop goes on."""
        real, raised = self.reactor.doIteration, list[int]()

        def poll_once_failing(timeout: float | None) -> None:
            if not raised:
                raised.append(1)
                raise RuntimeError("poll failed")
            real(timeout)

        self.reactor.doIteration = poll_once_failing  # type: ignore[method-assign]
        self.reactor.callLater(0.01, self.reactor.stop)
        self.run_reactor()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def assert_waits_capped(self, due: float) -> None:
        """With a timed call due at C{due} (the only one: no deadline, which would come
        first), every poll waits the longest time epoll takes."""
        waits: list[float | None] = []
        real = self.reactor.doIteration

        def poll(timeout: float | None) -> None:
            waits.append(timeout)
            if len(waits) == 4:
                self.reactor.stop()
            real(0)

        self.reactor.doIteration = poll  # type: ignore[method-assign]
        call = self.reactor.callLater(3600, lambda: None)
        self.reactor.callWhenRunning(setattr, call, "time", due)
        self.run_reactor(deadline=False)  # the poll above stops it after four rounds
        self.assertEqual(waits[:4], [_LONGEST_POLL] * 4)  # then one at 0 while stopping

    def test_far_timeout_capped(self) -> None:
        """A timed call further away than epoll can wait is waited for in steps."""
        self.assert_waits_capped(10.0 ** 12)

    def test_not_a_number_capped(self) -> None:
        """A due time that is not a number (callLater(nan) under python -O) does not make
        every poll fail."""
        self.assert_waits_capped(float("nan"))

    def test_twisted_loop_without_the_attributes(self) -> None:
        """Without the private attributes it reads, the loop is Twisted's: bookkeeping before
        every poll, events or not."""
        self.reactor.timing_ok = False
        _, bookkeeping, polls = self.echo_rounds(20)
        self.assertGreaterEqual(polls[0], 20)
        self.assertGreaterEqual(bookkeeping[0], polls[0])


class Connecting(Reader):
    """A write descriptor (a connect in progress) recording its write events."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.writes = 0

    def doWrite(self) -> None:
        self.writes += 1


class ShortcutTests(SocketPairCase):
    """The two shortcuts that save an epoll_ctl each, and their public fallback."""

    def test_forget(self) -> None:
        """A forgotten descriptor is no longer watched (its owner closes it next)."""
        reader = Reader(self.left)
        self.reactor.addReader(reader)
        self.reactor.forget(reader, reader.fileno())
        self.assertNotIn(reader, self.reactor.getReaders())  # type: ignore[no-untyped-call]
        self.left.close()
        self.reactor.doPoll(0)  # the closed descriptor left the epoll set with its close
        self.assertEqual(reader.reads, 0)

    def test_forget_unknown(self) -> None:
        """Forgetting what is not registered (or is another's descriptor) changes nothing."""
        reader, other = Reader(self.left), Reader(self.left)
        self.reactor.addReader(reader)
        self.reactor.forget(other, other.fileno())
        self.assertIn(reader, self.reactor.getReaders())  # type: ignore[no-untyped-call]

    def test_hand_over(self) -> None:
        """A descriptor registered for writing passes to its reader with one modify: the
        reader gets the reads, the writer no more write events."""
        writer, reader = Connecting(self.left), Reader(self.left)
        self.reactor.addWriter(writer)
        self.reactor.doPoll(0)
        self.assertEqual(writer.writes, 1)
        self.reactor.hand_over(writer, reader, reader.fileno())
        self.assertNotIn(writer, self.reactor.getWriters())  # type: ignore[no-untyped-call]
        self.assertIn(reader, self.reactor.getReaders())  # type: ignore[no-untyped-call]
        self.right.send(b"x")
        self.reactor.doPoll(0)
        self.assertEqual((writer.writes, reader.reads), (1, 1))

    def test_hand_over_not_writing(self) -> None:
        """Where the old descriptor is not registered for writing only, the hand-over takes
        the public route and still ends with the reader registered."""
        writer, reader = Connecting(self.left), Reader(self.left)
        self.reactor.hand_over(writer, reader, reader.fileno())
        self.assertIn(reader, self.reactor.getReaders())  # type: ignore[no-untyped-call]
        self.assertNotIn(writer, self.reactor.getWriters())  # type: ignore[no-untyped-call]

    def test_shortcuts_choice(self) -> None:
        """The lean reactor is its own shortcuts; another reactor gets the public calls, and so
        does a lean reactor whose internals did not check out."""
        from twisted.internet.testing import MemoryReactor

        self.assertIs(shortcuts(self.reactor), self.reactor)
        self.assertIsInstance(shortcuts(MemoryReactor()), PublicShortcuts)
        self.reactor.internals_ok = False
        self.assertIsInstance(shortcuts(self.reactor), PublicShortcuts)

    def test_public_shortcuts(self) -> None:
        """The public fallback does the same with addReader/removeWriter."""
        from twisted.internet.testing import MemoryReactor

        memory = MemoryReactor()
        writer, reader = Connecting(self.left), Reader(self.left)
        memory.addWriter(writer)
        public = PublicShortcuts(memory)
        public.hand_over(writer, reader, reader.fileno())
        self.assertEqual((memory.getWriters(), memory.getReaders()), ([], [reader]))
        public.forget(reader, reader.fileno())
        self.assertEqual(memory.getReaders(), [])


class Kept(Reader):
    """A reader whose class keeps its descriptor while registered; counts fileno() calls."""

    asked = 0

    def fileno(self) -> int:
        self.asked += 1
        return self.sock.fileno()

    def doWrite(self) -> None:
        pass


keeps_descriptor(Kept)


class Asked(Kept):
    """The same, not declared (a subclass is not covered by its parent's declaration)."""


class KeptDescriptorTests(SocketPairCase):
    """A class that keeps its descriptor is dispatched without a fileno() per event."""

    def test_not_asked(self) -> None:
        """A declared class's event goes to doRead without asking fileno()."""
        reader = Kept(self.left)
        self.reactor.addReader(reader)
        asked = reader.asked
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual((reader.reads, reader.asked), (1, asked))

    def test_others_asked(self) -> None:
        """Any other class (a subclass too) is asked before each event, as Twisted does."""
        reader = Asked(self.left)
        self.reactor.addReader(reader)
        asked = reader.asked
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual((reader.reads, reader.asked), (1, asked + 1))


class RegistrationShortcutTests(SocketPairCase):
    """start_reading and its kin: the reactor's addReader and kin, given the descriptor."""

    def registered(self) -> tuple[list[object], list[object]]:
        """The readers and writers registered by the test (not the reactor's own waker)."""
        readers = self.reactor.getReaders()  # type: ignore[no-untyped-call]
        writers = self.reactor.getWriters()  # type: ignore[no-untyped-call]
        return ([r for r in readers if isinstance(r, Reader)],
                [w for w in writers if isinstance(w, Reader)])

    def test_read_and_write(self) -> None:
        """Reading and writing, alone or together, as addReader and addWriter register them;
        each event reaches its handler, and stopping both leaves nothing registered."""
        selectable = Kept(self.left)
        fd = self.left.fileno()
        self.reactor.start_reading(selectable, fd)
        self.reactor.start_reading(selectable, fd)  # already: nothing changes
        self.assertEqual(self.registered(), ([selectable], []))
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(selectable.reads, 1)
        self.reactor.start_writing(selectable, fd)
        self.reactor.start_writing(selectable, fd)
        self.assertEqual(self.registered(), ([selectable], [selectable]))
        self.reactor.stop_reading(selectable, fd)
        self.assertEqual(self.registered(), ([], [selectable]))
        self.right.send(b"y")
        self.reactor.doPoll(0)  # writable, and no longer read
        self.assertEqual(selectable.reads, 1)
        self.reactor.start_reading(selectable, fd)
        self.reactor.stop_writing(selectable, fd)
        self.assertEqual(self.registered(), ([selectable], []))
        self.reactor.stop_reading(selectable, fd)
        self.assertEqual(self.registered(), ([], []))
        self.assertNotIn(fd, self.reactor._selectables)
        self.right.send(b"z")
        self.reactor.doPoll(0)
        self.assertEqual(selectable.reads, 1)

    def test_write_then_read(self) -> None:
        """Writing first, then reading too: both registered on the one descriptor."""
        selectable = Kept(self.left)
        fd = self.left.fileno()
        self.reactor.start_writing(selectable, fd)
        self.reactor.start_reading(selectable, fd)
        self.assertEqual(self.registered(), ([selectable], [selectable]))
        self.reactor.stop_writing(selectable, fd)
        self.reactor.stop_writing(selectable, fd)  # not writing: the public call, a no-op
        self.reactor.stop_reading(selectable, fd)
        self.reactor.stop_reading(selectable, fd)
        self.assertEqual(self.registered(), ([], []))

    def test_refused_by_epoll(self) -> None:
        """A descriptor epoll refuses (a regular file: EPERM) takes the public call, which
        polls it continuously, as Twisted does; stopping takes the public call too."""
        with tempfile.TemporaryFile() as file:
            selectable = Reader(file)  # type: ignore[arg-type]
            fd = file.fileno()
            self.reactor.start_reading(selectable, fd)
            self.reactor.start_writing(selectable, fd)
            polling = self.reactor._continuousPolling
            self.assertTrue(polling.isReading(selectable))
            self.assertTrue(polling.isWriting(selectable))
            self.assertNotIn(fd, self.reactor._reads | self.reactor._writes)
            self.reactor.stop_reading(selectable, fd)
            self.reactor.stop_writing(selectable, fd)
            self.assertFalse(polling.isReading(selectable))
            self.assertFalse(polling.isWriting(selectable))

    def test_public(self) -> None:
        """The public fallback calls addReader and kin."""
        from twisted.internet.testing import MemoryReactor

        memory = MemoryReactor()
        selectable = Reader(self.left)
        public = PublicShortcuts(memory)
        public.start_reading(selectable, -5)
        public.start_writing(selectable, -5)
        self.assertEqual((memory.getReaders(), memory.getWriters()),
                         ([selectable], [selectable]))
        public.stop_reading(selectable, -5)
        public.stop_writing(selectable, -5)
        self.assertEqual((memory.getReaders(), memory.getWriters()), ([], []))

    def test_start_up_check(self) -> None:
        """A poller without what the shortcuts use fails the start-up check (the transports
        then take the public calls: see test_shortcuts_choice)."""

        class ModifyOnly:
            def modify(self, fd: int, events: int) -> None:
                pass

        self.assertTrue(self.reactor.check_internals())
        poller = self.reactor._poller
        self.reactor._poller = ModifyOnly()
        try:
            self.assertFalse(self.reactor.check_internals())
        finally:
            self.reactor._poller = poller
