# -*- test-case-name: tests.test_garbage -*-
"""
Tests of freezing the start-up objects out of the cyclic collector's walks.
"""

from __future__ import annotations

import gc

from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from penbal.garbage import freeze_now, freeze_startup_objects


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
