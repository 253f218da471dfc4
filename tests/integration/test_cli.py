# -*- test-case-name: tests.integration.test_cli -*-
"""
The command line as users meet it: bad input, port in use, twistd's pid and log files.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import BIN, PenbalProcess, free_port, run_penbal, wait_for


class BadInputTests(SynchronousTestCase):
    """Each mistake gives one line naming the value and the expected form, and exit != 0."""

    def assertOneLineError(self, args: list[str], *fragments: str) -> None:
        result = run_penbal(args)
        self.assertNotEqual(result.returncode, 0)
        self.assertNotIn("Traceback", result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def test_bad_backend(self) -> None:
        """A malformed backend is named with the expected form."""
        self.assertOneLineError(["127.0.0.1:3306", "node1:99999"], "'99999'", "1-65535")
        self.assertOneLineError(["127.0.0.1:3306", "node1:3306:x"], "MAXC", "'x'")

    def test_systemd_without_inherited_socket(self) -> None:
        """A systemd: LISTEN (or control port) with no socket passed: one line naming
        LISTEN_FDS and LISTEN_FDNAMES, not a traceback from Twisted's parser."""
        for args in (["systemd:domain=INET:index=0", "127.0.0.1:1"],
                     ["systemd:domain=INET:name=penbal", "127.0.0.1:1"],
                     ["-C", "systemd:domain=INET:index=0", f"127.0.0.1:{free_port()}",
                      "127.0.0.1:1"]):
            self.assertOneLineError(args, "systemd:domain=INET:", "LISTEN_FDS",
                                    "LISTEN_FDNAMES")

    def test_bad_listen(self) -> None:
        """A malformed LISTEN is named with the expected form."""
        self.assertOneLineError(["notaport", "127.0.0.1:1"], "'notaport'", "[HOST:]PORT")

    def test_option_out_of_range(self) -> None:
        """Numbers out of range name the option."""
        self.assertOneLineError(["-x", "0", "3306", "127.0.0.1:1"], "--max-connections", "'0'")
        self.assertOneLineError(["-t", "soon", "3306", "127.0.0.1:1"], "--timeout", "'soon'")
        self.assertOneLineError(["-b", "-1", "3306", "127.0.0.1:1"], "--blacklist")

    def test_missing_backend(self) -> None:
        """A LISTEN without backends says what is missing."""
        self.assertOneLineError(["3306"], "missing BACKEND")

    def test_port_in_use(self) -> None:
        """A port already in use is one line and a non-zero exit, no traceback."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            args = [f"127.0.0.1:{port}", "127.0.0.1:1"]
            self.assertOneLineError(args, "cannot listen", str(port))


class TwistdTests(SynchronousTestCase):
    """twistd penbal: Pen's -p pid file and -l log file."""

    def test_pidfile_and_logfile(self) -> None:
        """twistd writes the pid file and the event log, penbal the access log (-l); it
        relays, and removes the pid file on SIGTERM."""
        backend = NameBackend("a")
        self.addCleanup(backend.stop)
        work = Path(tempfile.mkdtemp())
        pidfile, logfile, port = work / "pen.pid", work / "pen.log", free_port()
        access = work / "access.log"
        subprocess.run(
            [str(BIN / "twistd"), "--pidfile", str(pidfile), "--logfile", str(logfile),
             "penbal", "-l", str(access), f"127.0.0.1:{port}", backend.address],
            check=True, timeout=30, cwd=work,
        )
        wait_for(pidfile.exists, 20, "the pid file")
        pid = int(pidfile.read_text())
        self.addCleanup(lambda: _kill_if_alive(pid))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            self.assertEqual(s.recv(10), b"a\n")
        wait_for(lambda: f"-> 127.0.0.1:{backend.port}: " in access.read_text(),
                 10, "the connection in the access log")
        self.assertIn("(LeanEPollReactor)", logfile.read_text())
        os.kill(pid, 15)
        wait_for(lambda: not pidfile.exists(), 20, "the pid file to be removed")
        wait_for(lambda: not _alive(pid), 20, "the daemon to exit")


    def test_port_in_use_fails_the_daemon(self) -> None:
        """twistd on a port in use: the command exits 1 saying why, the log names it, and no
        pid file is left (the daemon used to exit while twistd waited for it forever)."""
        work = Path(tempfile.mkdtemp())
        pidfile, logfile = work / "pen.pid", work / "pen.log"
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            done = subprocess.run(
                [str(BIN / "twistd"), "--pidfile", str(pidfile), "--logfile", str(logfile),
                 "penbal", f"127.0.0.1:{port}", "127.0.0.1:1"],
                capture_output=True, timeout=60, cwd=work,
            )
        self.assertEqual(done.returncode, 1)
        self.assertIn(b"cannot listen", done.stderr)
        # The daemon tells twistd first, then finishes its log.
        wait_for(lambda: f"cannot listen on 'tcp:{port}:interface=127.0.0.1'"
                 in logfile.read_text(), 20, "the reason in the log file")
        self.assertFalse(pidfile.exists())


class ReactorChoiceTests(SynchronousTestCase):
    """twist penbal runs on the lean reactor unless --reactor names another."""

    def reactor_of(self, reactor: str | None) -> str:
        backend = NameBackend("a")
        self.addCleanup(backend.stop)
        port = free_port()
        proc = PenbalProcess([f"127.0.0.1:{port}", backend.address], listen_port=port,
                             reactor=reactor)
        self.addCleanup(proc.stop)
        wait_for(lambda: "penbal listening on" in proc.log(), 10, "the listening line")
        line = next(x for x in proc.log().splitlines() if "penbal listening on" in x)
        return str(json.loads(line)["reactor"])

    def test_default_is_lean(self) -> None:
        """No --reactor: penbal-epoll."""
        self.assertEqual(self.reactor_of(None), "LeanEPollReactor")

    def test_no_tls_no_openssl(self) -> None:
        """Without TLS configured, pyOpenSSL (and cryptography under it) is never loaded; a
        TLS-less balancer answers on its plain TCP port all the same."""
        backend = NameBackend("a")
        self.addCleanup(backend.stop)
        port = free_port()
        proc = PenbalProcess([f"127.0.0.1:{port}", backend.address], listen_port=port)
        self.addCleanup(proc.stop)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            self.assertEqual(s.recv(10), b"a\n")
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        self.assertNotIn("cryptography", maps)

    def test_named_reactor_wins(self) -> None:
        """twist --reactor epoll penbal: Twisted's own."""
        self.assertEqual(self.reactor_of("epoll"), "EPollReactor")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(
        f"/proc/{pid}/status").read_text()


def _kill_if_alive(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, 9)
