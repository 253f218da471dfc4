"""
Tests for L{penbal.testing.chaos.cli}: bad arguments are refused with a clear message.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.chaos.cli import as_json, main, parser, report
from penbal.testing.chaos.fitness import FitTimeline
from penbal.testing.chaos.journal import Connect, FaultSpan, Transaction
from penbal.testing.chaos.run import Outcome
from penbal.testing.chaos.tally import Tally


class ArgumentTests(SynchronousTestCase):
    def refused(self, *argv: str) -> str:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            error = self.assertRaises(SystemExit, main, list(argv))
        self.assertEqual(error.code, 2)
        return err.getvalue()

    def test_minutes(self) -> None:
        self.assertIn("expected minutes between 0 and 1440, not '0'",
                      self.refused("--minutes", "0"))
        self.assertIn("not 'soon'", self.refused("--minutes", "soon"))

    def test_faults(self) -> None:
        self.assertIn("unknown fault kind(s) ['flood']", self.refused("--faults", "kill9,flood"))

    def test_defaults(self) -> None:
        """Two minutes, every kind, 16 clients, seed 17."""
        args = parser().parse_args([])
        self.assertEqual((args.minutes, args.clients, args.seed, len(args.faults)),
                         (2.0, 16, 17, 6))


class ReportTests(SynchronousTestCase):
    def outcome(self) -> Outcome:
        fault = FaultSpan("kill9", (2,), 10.0, 20.0, 21.0)
        tally = Tally(["kill9"], 2.0, FitTimeline({})).count(
            [fault], [Connect(11.0, 11.5, None, "OperationalError: (2013, 'Lost')")],
            [Transaction("transfer", 12.0, 12.1, "node2", False, error="(1047, 'no')")], [])
        return Outcome(tally, [fault], 2.0, {1: 200_000, 2: 200_000, 3: 199_990},
                       Path("penbal.log"), 0, 60.0)

    def test_report(self) -> None:
        """The table, the failures by error, and each goal missed (here a node's total)."""
        text = report(self.outcome())
        self.assertIn("| kill9 | 1 | 1 (0) / 1 | 1 (0) [0] / 1 |", text)
        self.assertIn("- kill9: connect 2013 x1, transfer 1047 x1", text)
        self.assertIn("goals missed:\n- node3 holds a total of 199990, not 200000", text)

    def test_json(self) -> None:
        """The JSON document is plain data (failures keyed by text)."""
        document = json.loads(json.dumps(as_json(self.outcome(), seed=17, minutes=1.0)))
        self.assertEqual(document["rows"][0]["errors"], {"connect 2013": 1, "transfer 1047": 1})
        self.assertEqual((document["seed"], document["faults"][0]["nodes"]), (17, [2]))
