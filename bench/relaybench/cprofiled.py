# -*- test-case-name: tests.bench.test_calls -*-
"""
Run a Python program (a relay) with cProfile switched on and off from outside, by SIGUSR2.

Usage: ``python cprofiled.py OUTPUT SCRIPT [ARG...]`` runs SCRIPT as ``__main__`` with
``sys.argv = [SCRIPT, ARG...]``.  The first SIGUSR2 starts profiling, the second stops it and
writes the statistics to OUTPUT (``pstats`` format).  So only the calls made under load are
counted, not those of start-up and shutdown, which ``python -m cProfile`` would add in.

Standalone (the standard library only): it runs in the relay's interpreter, not the
benchmark's, with this directory first on ``sys.path`` until SCRIPT starts, so no module here
may share a name with the standard library's (hence ``profiling.py``, not ``profile.py``).
SIGUSR2 is free in penbal (it handles SIGHUP, SIGUSR1, SIGTERM and SIGINT).
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
from types import FrameType


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: cprofiled.py OUTPUT SCRIPT [ARG...]")
    output, script, *args = argv
    profiler = cProfile.Profile()
    running = False

    def toggle(signum: int, frame: FrameType | None) -> None:
        nonlocal running
        if running:
            profiler.disable()
            profiler.dump_stats(output + ".part")
            os.replace(output + ".part", output)  # whole, or not there yet
        else:
            profiler.enable()
        running = not running

    signal.signal(signal.SIGUSR2, toggle)
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as if run directly
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
