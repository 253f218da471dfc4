"""
Tests for L{penbal.testing.chaos.cli}: bad arguments are refused with a clear message.
"""

from __future__ import annotations

import contextlib
import io

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.chaos.cli import main, parser


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
