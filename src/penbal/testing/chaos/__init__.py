# -*- test-case-name: tests.galera.test_chaos -*-
"""
A chaos run against a real Galera cluster through a real penbal: clients doing money
transfers and version reads, faults injected at random and undone, and the counts per fault
kind (failed connects, failed transactions, stale reads, balance violations, time back to
full traffic).  Shared by C{bench/chaos} and C{tests.galera.test_chaos}.
"""

from penbal.testing.chaos.run import ChaosRun, Outcome, Settings
from penbal.testing.chaos.tally import markdown

__all__ = ["ChaosRun", "Outcome", "Settings", "markdown"]
