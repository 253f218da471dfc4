# -*- test-case-name: tests.bench.test_calls -*-
"""
Tests of relaybench.calls and relaybench.cprofiled: Python calls per request, counted by a
profiler switched on and off from outside.
"""

import cProfile
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from relaybench import calls
from relaybench.profiling import CPROFILED

DEADLINE = 20.0


def _tick(n: int) -> int:
    return n + 1


class WhereTests(SynchronousTestCase):
    """How a function is named in the list."""

    def test_site_packages_cut(self) -> None:
        """A file under site-packages is named from its package on."""
        self.assertEqual(
            calls.where("/v/lib/python3.11/site-packages/twisted/internet/base.py", 686, "run"),
            "run (twisted/internet/base.py:686)",
        )

    def test_src_cut(self) -> None:
        """A file of the tree is named from below src/."""
        self.assertEqual(calls.where("/work/t/src/penbal/relay/legs.py", 36, "_unregister"),
                         "_unregister (penbal/relay/legs.py:36)")

    def test_standard_library_cut(self) -> None:
        """A standard library file is named without the interpreter's directory."""
        self.assertEqual(calls.where("/usr/lib/python3.11/socket.py", 220, "__init__"),
                         "__init__ (socket.py:220)")

    def test_builtin(self) -> None:
        """Built-ins keep cProfile's own name."""
        self.assertEqual(calls.where("~", 0, "<built-in method builtins.len>"),
                         "<built-in method builtins.len>")


class LoadAndSummaryTests(SynchronousTestCase):
    """Reading a pstats file and dividing by the requests."""

    def _stats(self) -> Path:
        path = Path(self.mktemp())
        profiler = cProfile.Profile()
        profiler.enable()
        for n in range(30):
            _tick(n)
        profiler.disable()
        profiler.dump_stats(str(path))
        return path

    def test_counts(self) -> None:
        """Every call is counted, the most called function first."""
        functions = calls.load(self._stats())
        tick = [f for f in functions if f.name.startswith("_tick (")]
        self.assertEqual([f.calls for f in tick], [30])
        self.assertEqual(functions[0].calls, max(f.calls for f in functions))

    def test_per_request(self) -> None:
        """The summary divides the calls by the requests."""
        functions = calls.load(self._stats())
        total = sum(f.calls for f in functions)
        text = calls.summary(functions, 10, 5)
        self.assertIn(f"= {total / 10:,.1f} per request", text)
        self.assertIn("     3.00", text)  # _tick: 30 calls over 10 requests

    def test_no_requests(self) -> None:
        """Nothing to divide by is said, not a division by zero."""
        self.assertIn("no requests", calls.summary([], 0, 5))


SCRIPT = """\
import os, sys, time
def tick():
    return 1
open(sys.argv[1], "w").close()           # ready
end = time.monotonic() + {deadline}
while not os.path.exists(sys.argv[2]) and time.monotonic() < end:
    tick()
    time.sleep(0.001)
"""


class ProfiledProcessTests(SynchronousTestCase):
    """cprofiled.py around a real (small) Python process."""

    def test_profiles_between_the_signals(self) -> None:
        """The first SIGUSR2 starts counting, the second writes the statistics; the program
        runs on, with its own arguments."""
        base = Path(self.mktemp())
        base.mkdir()
        script, ready, stop, output = (base / n for n in ("s.py", "ready", "stop", "out"))
        script.write_text(SCRIPT.format(deadline=DEADLINE))
        proc = subprocess.Popen([sys.executable, str(CPROFILED), str(output), str(script),
                                 str(ready), str(stop)])
        try:
            self._wait(ready.exists)
            proc.send_signal(signal.SIGUSR2)
            time.sleep(0.3)
            proc.send_signal(signal.SIGUSR2)
            self._wait(output.exists)
            self.assertIsNone(proc.poll())
            ticks = [f.calls for f in calls.load(output) if f.name.startswith("tick (")]
            self.assertEqual(len(ticks), 1)
            self.assertGreater(ticks[0], 10)
            stop.touch()
            self.assertEqual(proc.wait(timeout=DEADLINE), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _wait(self, condition: Callable[[], bool]) -> None:
        end = time.monotonic() + DEADLINE
        while not condition():
            if time.monotonic() > end:
                self.fail("timed out")
            time.sleep(0.02)
