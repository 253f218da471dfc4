# -*- test-case-name: tests.integration.test_policies_plugin -*-
"""
A third-party policy from a folder a user made: the example of docs/writing-a-policy.rst,
copied to SOMEDIR/penbal/plugins/ with SOMEDIR on PYTHONPATH, run by a real penbal.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import BIN
from tests.conformance.pen import Penbal
from tests.conformance.replay import counts, replay

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "penbal" / "plugins" / "samesubnet.py"


class UserPluginTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.somedir = Path(self.mktemp())
        self.folder = self.somedir / "penbal" / "plugins"
        self.folder.mkdir(parents=True)
        shutil.copy(EXAMPLE, self.folder / "samesubnet.py")
        path = os.environ.get("PYTHONPATH")
        self.env = {"PYTHONPATH": str(self.somedir) + (os.pathsep + path if path else "")}

    def start_backends(self) -> list[str]:
        specs = []
        for name, host in (("near-a", "127.0.1.1"), ("near-b", "127.0.1.2"), ("far", "127.0.2.1")):
            backend = NameBackend(name, host=host)
            self.addCleanup(backend.stop)
            specs.append(f"{host}:{backend.port}")
        return specs

    def list_policies(self) -> tuple[str, str]:
        import subprocess

        done = subprocess.run([str(BIN / "twist"), "penbal", "--list-policies"], timeout=60,
                              capture_output=True, text=True, env=dict(os.environ, **self.env))
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout, done.stderr

    def test_listed(self) -> None:
        """--list-policies shows the user's policy with its description."""
        out, err = self.list_policies()
        self.assertIn("samesubnet     backends in the client's own /24", out)
        self.assertEqual(err, "")

    def test_runs_from_user_folder(self) -> None:
        """--policy samesubnet loads the example, and clients stay in their own /24."""
        proc = Penbal(["--policy", "samesubnet"], self.start_backends(), self.env)
        self.addCleanup(proc.stop)
        near = replay(proc.port, ["127.0.1.50"] * 4)
        self.assertEqual(counts(near), {"near-a": 2, "near-b": 2})
        far = replay(proc.port, ["127.0.2.9"] * 3)
        self.assertEqual(counts(far), {"far": 3})

    def test_broken_neighbour_named_others_work(self) -> None:
        """A broken plugin file beside it is named in the log; the example still works."""
        (self.folder / "broken.py").write_text("import no_such_module_for_penbal\n")
        out, err = self.list_policies()
        self.assertIn("samesubnet", out)
        self.assertIn("sticky", out)
        self.assertIn(str(self.folder / "broken.py"), err)
        proc = Penbal(["--policy", "samesubnet"], self.start_backends(), self.env)
        self.addCleanup(proc.stop)
        self.assertEqual(counts(replay(proc.port, ["127.0.2.9"])), {"far": 1})
        events = [json.loads(line) for line in proc.log().splitlines() if line.startswith("{")]
        problems = [e.get("problem", "") for e in events]
        named = [p for p in problems if str(self.folder / "broken.py") in p]
        self.assertEqual(len(named), 1, problems)
        self.assertIn("ModuleNotFoundError", named[0])
