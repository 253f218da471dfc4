# -*- test-case-name: tests.integration.test_command -*-
"""
The C{penbal} command as Pen's users type it: C{penbal -l pen.log -p pen.pid LISTEN BACKENDS}
goes into the background, C{-f} stays in the foreground; run as real processes on loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.command import CommandOptions, penbal_arguments, twistd_arguments
from penbal.testing.backends import NameBackend
from penbal.testing.process import BIN, free_port, listening, wait_for, wait_listening

PENBAL = str(BIN / "penbal")


def greeting(port: int) -> bytes:
    """What a backend behind penbal says (a NameBackend: its name) to a client that sends
    nothing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(100):
            data += chunk
        return data


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class ArgumentTests(SynchronousTestCase):
    """The command line split between the launcher and penbal."""

    def split(self, *argv: str) -> tuple[CommandOptions, list[str]]:
        command = CommandOptions()
        command.parseOptions(list(argv))
        return command, penbal_arguments(command, argv)

    def test_pen_line(self) -> None:
        """Pen's line: -p goes to the launcher, -l (the access log) and the rest to penbal."""
        command, penbal = self.split("-l", "pen.log", "-p", "pen.pid", "-x", "10", "-r",
                                     "localhost:3306", "node1:3306", "node2:3306")
        self.assertEqual(penbal, ["-l", "pen.log", "-x", "10", "-r", "localhost:3306",
                                  "node1:3306", "node2:3306"])
        self.assertEqual(twistd_arguments(command, penbal)[:2], ["--pidfile", "pen.pid"])
        self.assertFalse(command["foreground"])

    def test_launcher_options_anywhere_before_listen(self) -> None:
        """Long, short and bundled forms of the launcher's options are all taken out."""
        command, penbal = self.split("-rf", "--pid-file=x.pid", "--log-file", "-",
                                     "--log-format", "json", "3306", "a:1")
        self.assertEqual(penbal, ["-r", "3306", "a:1"])
        self.assertTrue(command["foreground"])
        self.assertEqual((command["pid-file"], command["log-format"]), ("x.pid", "json"))

    def test_no_pid_file_by_default(self) -> None:
        """Without -p twistd writes no pid file (its default would be twistd.pid); the event
        log goes to syslog unless --log-file names a file."""
        command, penbal = self.split("3306", "a:1")
        self.assertEqual(twistd_arguments(command, penbal),
                         ["--pidfile", "", "--syslog", "--prefix", "penbal", "penbal", "3306",
                          "a:1"])


class CommandCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="penbal-command-"))
        self.backend = NameBackend("db")
        self.addCleanup(self.backend.stop)
        self.port = free_port()
        self.listen = f"127.0.0.1:{self.port}"

    def run_command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PENBAL, *args], cwd=self.work, capture_output=True, text=True,
                              timeout=60)

    def stop_daemon(self, pidfile: Path) -> None:
        """SIGTERM the daemon named by the pid file, if it still runs (our own child's child)."""
        if pidfile.exists():
            pid = int(pidfile.read_text())
            if alive(pid):
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: not alive(pid), 20, "the daemon to exit")


class BackgroundTests(CommandCase):
    """Without -f penbal goes into the background, as Pen does."""

    def test_pen_command_line(self) -> None:
        """penbal -l pen.log -p pen.pid LISTEN BACKEND: the command returns once penbal
        listens in a new session; connections are in the access log; SIGTERM removes the
        pid file and flushes the access log."""
        pidfile, access = self.work / "pen.pid", self.work / "pen.log"
        self.addCleanup(self.stop_daemon, pidfile)
        done = self.run_command("-l", "pen.log", "-p", "pen.pid", "--log-file", "events.log",
                                self.listen, self.backend.address)
        self.assertEqual(done.returncode, 0, done.stderr)
        pid = int(pidfile.read_text())
        self.assertTrue(alive(pid))
        self.assertNotEqual(os.getsid(pid), os.getsid(0))  # daemonized: a session of its own
        self.assertTrue(listening(self.port, pid))  # listening before the command returned
        for _ in range(3):
            self.assertEqual(greeting(self.port), b"db\n")
        wait_for(lambda: access.exists() and len(access.read_text().splitlines()) >= 3, 10,
                 "three access log lines")
        self.assertIn(f"-> {self.backend.address}: ", access.read_text())
        self.assertNotIn("bytes in", (self.work / "events.log").read_text())
        greeting(self.port)  # one more, still buffered when the stop comes
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), 20, "penbal to exit")
        self.assertFalse(pidfile.exists())
        self.assertEqual(len(access.read_text().splitlines()), 4)

    def test_start_up_error_reported(self) -> None:
        """A port in use: the command says so on its own stderr and exits 1; no pid file."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", self.port))
            taken.listen()
            done = self.run_command("-p", "pen.pid", "--log-file", "events.log", self.listen,
                                    self.backend.address)
        self.assertEqual(done.returncode, 1)
        self.assertIn(f"cannot listen on 'tcp:{self.port}:interface=127.0.0.1'", done.stderr)
        # The daemon tells the command first, then finishes its log.
        wait_for(lambda: "Address already in use" in (self.work / "events.log").read_text(), 10,
                 "the reason in the event log")
        self.assertFalse((self.work / "pen.pid").exists())

    def test_mistakes_are_one_line(self) -> None:
        """A bad option or access log: one line, non-zero exit, nothing in the background."""
        for args, fragment in (
            (["-x", "zz", self.listen, self.backend.address], "--max-connections"),
            (["-l", "/nonexistent/dir/pen.log", self.listen, self.backend.address],
             "access log"),
            (["--log-format", "json", self.listen, self.backend.address], "need -f"),
        ):
            done = self.run_command("-p", "pen.pid", *args)
            self.assertNotEqual(done.returncode, 0, args)
            lines = done.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, done.stderr)
            self.assertIn(fragment, lines[0])
            self.assertFalse((self.work / "pen.pid").exists())

    def test_help(self) -> None:
        """penbal --help lists Pen's -l, -p and -f with every twist penbal option."""
        done = self.run_command("--help")
        self.assertEqual(done.returncode, 0, done.stderr)
        for option in ("-l, --access-log", "-p, --pid-file", "-f, --foreground", "--check",
                       "--max-connections"):
            self.assertIn(option, done.stdout)


class ForegroundTests(CommandCase):
    """penbal -f: twist penbal, with Pen's pid file."""

    def end(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def test_foreground(self) -> None:
        """penbal -f stays in the process started (its pid in the pid file), logs as twist
        does, writes the access log to standard output with -l -, and exits 0 on SIGTERM."""
        pidfile = self.work / "pen.pid"
        out = (self.work / "out.txt").open("wb")
        self.addCleanup(out.close)
        proc = subprocess.Popen(
            [PENBAL, "-f", "-p", str(pidfile), "-l", "-", "--log-file", "events.json",
             "--log-format", "json", self.listen, self.backend.address],
            cwd=self.work, stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(self.end, proc)
        wait_listening(self.port, proc, "penbal -f")
        wait_for(pidfile.exists, 10, "the pid file")
        self.assertEqual(int(pidfile.read_text()), proc.pid)
        self.assertEqual(greeting(self.port), b"db\n")
        stdout = self.work / "out.txt"
        wait_for(lambda: "ended by" in stdout.read_text(), 10, "the access log line")
        self.assertIn('"penbal listening on', (self.work / "events.json").read_text())
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(20), 0)
        self.assertFalse(pidfile.exists())
