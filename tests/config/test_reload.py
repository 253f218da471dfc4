# -*- test-case-name: tests.config.test_reload -*-
"""
Tests of reloading the config file: a good file applies as a diff, a bad one changes nothing.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any, cast

from twisted.logger import ILogObserver, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState
from penbal.config.reconcile import capture
from penbal.config.reload import Reloader
from tests.control.fixtures import connect, make_runtime


class ReloadTests(SynchronousTestCase):
    """A Reloader over a runtime started with backends :4000 and :4001."""

    def setUp(self) -> None:
        self.runtime, self.harness = make_runtime()
        self.path = self.mktemp()
        self.reloader = Reloader(self.runtime, self.path)
        self.events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def test_good_file(self) -> None:
        """Backends added, removed and changed; policy and limits set; live state kept."""
        front: Any = connect(self.harness)
        kept = front.backend
        kept.admin = AdminState.DRAIN
        other = 1 - kept.index
        self.write(
            "no servers\n"
            f"add {kept.spec.address}:10:20:3:0\n"
            "add 127.0.0.1:4009\n"
            "roundrobin\nconn_max 50\n"
        )
        outcome = self.reloader.reload()
        self.assertTrue(outcome.startswith(f"reloaded {self.path}: "), outcome)
        pool = self.runtime.balancer.pool
        addresses = [b.address for b in pool]
        self.assertEqual(addresses, [kept.address, "127.0.0.1:4009"])
        self.assertNotIn(f"127.0.0.1:400{other}", addresses)
        self.assertIs(pool[0], kept)
        self.assertEqual((kept.spec.maxc, kept.spec.weight), (10, 3))
        self.assertIn(front, kept.live)
        self.assertEqual(kept.counters.total, 1)
        self.assertEqual(kept.admin, AdminState.DRAIN)
        self.assertEqual(self.runtime.policy.name, "roundrobin")
        self.assertEqual(self.runtime.balancer.settings.max_connections, 50)
        self.assertTrue(any(e.get("penbal_event") == "reloaded" for e in self.events))

    def test_reload_frees_what_it_replaced(self) -> None:
        """What the reload replaced was frozen at start-up (penbal.garbage); the reload thaws,
        collects and freezes again, so that a replaced policy in a reference cycle is freed
        rather than leaked per reload."""
        self.addCleanup(gc.unfreeze)
        replaced = self.runtime.balancer.policy
        replaced.cycle = replaced  # type: ignore[attr-defined]
        gone = weakref.ref(replaced)
        gc.freeze()
        del replaced
        self.write("roundrobin\n")
        self.assertIn("reloaded", self.reloader.reload())
        self.assertIsNot(self.runtime.balancer.policy, gone())
        gc.collect()
        self.assertIsNone(gone())
        self.assertGreater(gc.get_freeze_count(), 0)

    def test_bad_file_rejected_whole(self) -> None:
        """One bad line anywhere: nothing changes, and the log names file, line and reason."""
        self.write("conn_max 50\nadd 127.0.0.1:4009\nserver 7 drain\n")
        before = capture(self.runtime)
        outcome = self.reloader.reload()
        self.assertEqual(capture(self.runtime), before)
        self.assertEqual(len(self.runtime.balancer.pool), 2)
        self.assertTrue(outcome.startswith(f"error: config file {self.path} line 3: no server 7"))
        rejected = [e for e in self.events if e.get("penbal_event") == "reload-rejected"]
        self.assertEqual(len(rejected), 1)
        self.assertEqual((rejected[0]["path"], rejected[0]["line"]), (self.path, 3))
        self.assertIn("no server 7", rejected[0]["reason"])

    def test_missing_file_rejected(self) -> None:
        """A file that is gone is rejected; the running configuration stays."""
        before = capture(self.runtime)
        self.assertIn("cannot read it", self.reloader.reload())
        self.assertEqual(capture(self.runtime), before)

    def test_reload_undoes_unwritten_changes_but_not_drain(self) -> None:
        """A reload returns to command line + file; drain and blacklist survive it."""
        self.write("timeout 5\n")
        self.reloader.reload()
        backend = self.runtime.balancer.pool[0]
        backend.admin = AdminState.DRAIN
        self.runtime.balancer.settings.timeout = 9.0
        self.reloader.reload()
        self.assertEqual(self.runtime.balancer.settings.timeout, 5.0)
        self.assertEqual(backend.admin, AdminState.DRAIN)
