# -*- test-case-name: tests.test_docs -*-
"""
The command line reference stays complete: every option of C{twist penbal} is in docs/cli.rst.
"""

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.options import Options

DOCS = Path(__file__).resolve().parent.parent / "docs"


class ReferenceTests(SynchronousTestCase):
    """docs/cli.rst against the Options class."""

    def test_every_option_documented(self) -> None:
        """Each long option appears in the reference as ``--NAME``."""
        reference = (DOCS / "cli.rst").read_text()
        missing = [
            name.rstrip("=")
            for name in Options().longOpt
            if f"``--{name.rstrip('=')}" not in reference
        ]
        self.assertEqual(missing, [])

    def test_defaults_documented(self) -> None:
        """Each option's default, where it has one, is given next to it."""
        reference = (DOCS / "cli.rst").read_text()
        options = Options()
        for cls in type(options).__mro__:
            for name, _short, default, *_ in cls.__dict__.get("optParameters", []):
                if default is not None:
                    self.assertIn(f"``--{name} VALUE`` (default: {default})", reference, name)
