# -*- test-case-name: tests.test_garbage -*-
"""
Tests of freezing the start-up objects out of the cyclic collector's walks.
"""

from __future__ import annotations

import gc
import weakref

from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from penbal.garbage import freeze_now, freeze_startup_objects, refreeze


class FreezeTests(SynchronousTestCase):
    """gc.freeze once the reactor runs."""

    def setUp(self) -> None:
        self.addCleanup(gc.unfreeze)

    def test_freeze_when_running(self) -> None:
        """Nothing is frozen at assembly; once the reactor runs, what exists is frozen."""
        gc.unfreeze()
        reactor = MemoryReactor()
        freeze_startup_objects(reactor)
        self.assertEqual(gc.get_freeze_count(), 0)
        reactor.run()
        self.assertGreater(gc.get_freeze_count(), 1000)

    def test_frozen_objects_are_not_walked(self) -> None:
        """A frozen object is out of every generation the collector walks."""
        gc.unfreeze()
        kept = [object(), {"a": 1}]
        freeze_now()
        self.assertFalse(any(o is kept for gen in range(3) for o in gc.get_objects(gen)))

    def test_refreeze_frees_frozen_cycles(self) -> None:
        """A frozen object that became cyclic garbage (what a reload replaced) stays after a
        collection, and is freed by refreeze, which freezes the rest again."""
        gc.unfreeze()
        replaced = Cycle()
        gone = weakref.ref(replaced)
        freeze_now()
        del replaced
        gc.collect()
        self.assertIsNotNone(gone())  # frozen: no collection walks it
        self.assertGreater(refreeze(), 1000)
        self.assertIsNone(gone())

    def test_refreeze_freezes_nothing_in_a_process_that_did_not(self) -> None:
        """A process that never froze (penbal embedded, a test that reloads) is not made to
        freeze everything it holds by a reload."""
        gc.unfreeze()
        self.assertEqual(refreeze(), 0)
        self.assertEqual(gc.get_freeze_count(), 0)


class Cycle:
    """An object in a reference cycle with itself: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self
