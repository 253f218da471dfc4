# -*- test-case-name: tests.workers.test_command -*-
"""
The command line a worker process is started with: C{python -m twisted} (that is, C{twist})
with the main process's reactor and logging, then C{penbal} with the main process's own
arguments and C{--worker-fds}.  A worker reads the same options, so it relays as the main
process would (TLS to backends, PROXY, ACLs, timeouts...); the parts that belong to the main
process (C{-C}, C{--http}, C{--check}, C{-F}, C{--workers}) it leaves alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from penbal.workers.supervisor import CHANNEL_FD, LISTEN_FD


def launcher_arguments(launcher: Any, absolute: Callable[[str], str] = os.path.abspath,
                       ) -> list[str]:
    """C{twist} options that give a worker the main process's reactor, log level, log format
    and log file (a worker's standard output and error are the main process's).  Under
    C{twistd}, the workers log as text to its log file (C{twistd.log} by default when it
    runs as a daemon)."""
    if not isinstance(launcher, dict):
        return []
    arguments: list[str] = []
    reactor = launcher.get("reactorName")
    if isinstance(reactor, str):
        arguments += ["--reactor", reactor]
    level = launcher.get("logLevel")
    if level is not None and hasattr(level, "name"):
        arguments += ["--log-level", str(level.name)]
    if "logfile" in launcher:  # twistd
        name = launcher["logfile"] or (None if launcher.get("nodaemon") else "twistd.log")
        if name is None or name == "-":
            return [*arguments, "--log-format", "text"]
        return [*arguments, "--log-format", "text", "--log-file", absolute(name)]
    if launcher.get("logFormat") in ("text", "json"):
        arguments += ["--log-format", str(launcher["logFormat"])]
    name = getattr(launcher.get("logFile"), "name", None)
    if isinstance(name, str) and name not in ("<stdout>", "<stderr>"):
        arguments += ["--log-file", absolute(name)]
    return arguments


def worker_command(executable: str, launcher: Any, arguments: Sequence[str],
                   listening: bool = True) -> list[str]:
    """The whole command line of a worker (of a spare worker if not C{listening})."""
    fds = f"{LISTEN_FD if listening else '-'},{CHANNEL_FD}"
    return [executable, "-m", "twisted", *launcher_arguments(launcher), "penbal",
            "--worker-fds", fds, *arguments]
