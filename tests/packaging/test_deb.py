# -*- test-case-name: tests.packaging.test_deb -*-
"""
The Debian package, end to end: C{scripts/build-deb}, C{apt-get install ./dist/penbal_*.deb},
the installed commands, units and man page, a relay through the installed C{penbal} run as
the C{penbal} user, then C{apt-get purge} leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import free_port, wait_listening

ROOT = Path(__file__).resolve().parent.parent.parent
APT = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q"]
ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def installed() -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "penbal"], capture_output=True,
                          text=True, check=False)
    return "install ok installed" in done.stdout


def purge() -> None:
    if installed():
        subprocess.run([*APT, "purge", "penbal"], env=ENV, capture_output=True, timeout=600,
                       check=True)


class DebianPackageTests(SynchronousTestCase):
    def run_checked(self, *command: str, timeout: float = 120) -> str:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                              env=ENV, cwd=ROOT, check=False)
        self.assertEqual(done.returncode, 0, f"{command}:\n{done.stdout[-3000:]}\n"
                                              f"{done.stderr[-3000:]}")
        return done.stdout + done.stderr

    def test_build_install_run_purge(self) -> None:
        """Build, install with apt-get, use it, purge it."""
        if installed():  # a package left by someone else's run would hide what we test
            purge()
        built = self.run_checked(str(ROOT / "scripts" / "build-deb"), timeout=1500)
        # The package's path is build-deb's last line on standard output; standard error
        # (merged after it here) may end with apt's notes when build-deb installed its tools
        # ("debconf: delaying package configuration" on a fresh machine).
        debs = [line for line in built.splitlines()
                if re.fullmatch(r"dist/penbal_[0-9][^_]*_[a-z0-9]+\.deb", line)]
        self.assertEqual(len(debs), 1, f"no single package path in:\n{built[-3000:]}")
        deb = debs[0]
        self.addCleanup(purge)
        self.run_checked(*APT, "install", f"./{deb}", timeout=600)

        self.assertIn("--access-log", self.run_checked("/usr/bin/penbal", "--help"))
        self.assertIn("usage: penbal-ctl", self.run_checked("/usr/bin/penbal-ctl", "--help"))
        self.assertTrue(Path("/usr/share/man/man1/penbal.1.gz").exists())
        self.assertTrue(Path("/etc/penbal/example.conf").exists())
        self.run_checked("getent", "passwd", "penbal")
        verify = self.run_checked("systemd-analyze", "verify",
                                  f"--man={'yes' if shutil.which('man') else 'no'}",
                                  "penbal@3306.service", "penbal@3306.socket")
        self.assertEqual(verify, "")
        self.relay_as_penbal_user()

        self.run_checked(*APT, "purge", "penbal", timeout=600)
        for path in ("/usr/bin/penbal", "/usr/bin/penbal-ctl", "/opt/venvs/penbal",
                     "/etc/penbal", "/lib/systemd/system/penbal@.service",
                     "/usr/share/man/man1/penbal.1.gz"):
            self.assertFalse(os.path.lexists(path), path)

    def relay_as_penbal_user(self) -> None:
        """The installed penbal, as the unit runs it (user penbal, -f), relays on loopback,
        and reads the plugin caches the package wrote instead of failing to write them."""
        backend = NameBackend("installed")
        self.addCleanup(backend.stop)
        port = free_port()
        log = Path(self.mktemp())
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["setpriv", "--reuid=penbal", "--regid=penbal", "--init-groups", "--",
                 "/usr/bin/penbal", "-f", "-l", "-",
                 f"127.0.0.1:{port}", backend.address],
                stdout=out, stderr=subprocess.STDOUT, cwd="/")
            try:
                wait_listening(port, proc, "the installed penbal", timeout=30)
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.shutdown(socket.SHUT_WR)
                    reply = b""
                    while chunk := s.recv(100):
                        reply += chunk
                self.assertEqual(reply, b"installed\n")
            finally:
                proc.terminate()
                self.assertEqual(proc.wait(30), 0)
        text = log.read_text()
        self.assertIn(f"-> {backend.address}: ", text)  # the access line, flushed at stop
        self.assertNotIn("plugin cache", text)
        self.assertNotIn("Traceback", text)
