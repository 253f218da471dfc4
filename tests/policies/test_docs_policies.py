# -*- test-case-name: tests.policies.test_docs_policies -*-
"""
docs/policies.rst shows the real C{twist penbal --list-policies} output, line for line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.process import BIN

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
COMMAND = "$ twist penbal --list-policies"


def documented_listing(text: str) -> list[str]:
    """The lines of the literal block that starts with C{COMMAND}, without its indent."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == COMMAND)
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    shown = []
    for line in lines[start + 1:]:
        if not line.startswith(indent) or not line.strip():
            break
        shown.append(line[len(indent):])
    return shown


class ListPoliciesDocTests(SynchronousTestCase):
    def test_sample_matches_real_output(self) -> None:
        """The sample in docs/policies.rst is exactly what --list-policies prints, with only
        penbal's own plugins on the path (no third-party folder on PYTHONPATH)."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        done = subprocess.run([str(BIN / "twist"), "penbal", "--list-policies"], timeout=60,
                              capture_output=True, text=True, env=env)
        self.assertEqual((done.returncode, done.stderr), (0, ""))
        shown = documented_listing((DOCS / "policies.rst").read_text())
        self.assertEqual(shown, done.stdout.splitlines())

    def test_every_built_in_described(self) -> None:
        """The documented listing is not empty and names galera-writer and sticky."""
        names = [line.split()[0] for line in
                 documented_listing((DOCS / "policies.rst").read_text())]
        self.assertIn("galera-writer", names)
        self.assertIn("sticky", names)
        self.assertEqual(names, sorted(names))
