"""
Tests of the benchmark harness (bench/relaybench): its parsers, reports and the pieces that
run real processes and sockets briefly (no load, no benchmark).

The harness is not an installed package; bench/ goes on C{sys.path} here, as bench/run puts
it there, so that the tests import it as C{relaybench}.
"""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
