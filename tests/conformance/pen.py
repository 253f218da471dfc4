# -*- test-case-name: tests.conformance.test_pen_selection -*-
"""
Debian's Pen and penbal as child processes for side-by-side runs, each ended by its pid.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from penbal.testing.process import ExitedEarlyError, PenbalProcess, free_port, wait_listening

PEN_MISSING = (
    "pen is not installed: these tests compare penbal with Debian's Pen 0.34.1 "
    "(apt-get install -y pen, see scripts/install-system-packages)"
)


def pen_binary() -> str:
    """The path of Debian's pen, or an AssertionError saying how to install it."""
    path = shutil.which("pen") or ("/usr/bin/pen" if Path("/usr/bin/pen").exists() else None)
    if path is None:
        raise AssertionError(PEN_MISSING)
    return path


START_TRIES = 3


class PenProcess:
    """C{pen -f FLAGS 127.0.0.1:PORT BACKENDS}, in the foreground, logging to a file."""

    def __init__(self, flags: Sequence[str], backends: Sequence[str]) -> None:
        for attempt in range(START_TRIES):
            try:
                self._start(flags, backends)
                return
            except ExitedEarlyError:
                if attempt == START_TRIES - 1:
                    raise

    def _start(self, flags: Sequence[str], backends: Sequence[str]) -> None:
        self.port = free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="pen-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [pen_binary(), "-f", *flags, f"127.0.0.1:{self.port}", *backends],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        try:
            wait_listening(self.port, self.process, "pen")
        except ExitedEarlyError as e:
            self._log.flush()
            said = self.log_path.read_text(errors="replace").strip()
            self.stop()
            raise ExitedEarlyError(f"{e}: {said}") from None
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM our pen by pid and reap it (SIGKILL only if it does not exit)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        self.log_path.unlink(missing_ok=True)


class Penbal:
    """C{twist penbal FLAGS 127.0.0.1:PORT BACKENDS}, waited for without a probe connection."""

    def __init__(self, flags: Sequence[str], backends: Sequence[str],
                 extra_env: dict[str, str] | None = None) -> None:
        for attempt in range(START_TRIES):
            try:
                self._start(flags, backends, extra_env)
                return
            except ExitedEarlyError:
                if attempt == START_TRIES - 1:
                    raise

    def _start(self, flags: Sequence[str], backends: Sequence[str],
               extra_env: dict[str, str] | None) -> None:
        self.port = free_port()
        self.proc = PenbalProcess([*flags, f"127.0.0.1:{self.port}", *backends],
                                  extra_env=extra_env)
        try:
            wait_listening(self.port, self.proc.process, f"penbal (log: {self.proc.log_path})")
        except ExitedEarlyError as e:
            said = self.proc.log().strip()
            self.stop()
            raise ExitedEarlyError(f"{e}: {said}") from None
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.proc.log()

    def stop(self) -> None:
        self.proc.stop()
