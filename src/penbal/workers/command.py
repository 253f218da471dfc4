# -*- test-case-name: tests.workers.test_command -*-
"""
The command line a worker process is started with: C{python -m twisted} (that is, C{twist})
with the main process's reactor and logging, then C{penbal} with the main process's own
arguments and C{--worker-fds}.  A worker reads the same options, so it relays as the main
process would (TLS to backends, PROXY, ACLs, timeouts...); the parts that belong to the main
process (C{-C}, C{--http}, C{--check}, C{-F}, C{--workers}) it leaves alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from penbal.workers.supervisor import CHANNEL_FD, LISTEN_FD


def launcher_arguments(launcher: Any) -> list[str]:
    """C{twist} options that give a worker the main process's reactor, log level, log format
    and log file (a worker's standard output and error are the main process's)."""
    if not isinstance(launcher, dict):
        return []
    arguments: list[str] = []
    reactor = launcher.get("reactorName") or launcher.get("reactor")
    if isinstance(reactor, str):
        arguments += ["--reactor", reactor]
    level = launcher.get("logLevel")
    if level is not None and hasattr(level, "name"):
        arguments += ["--log-level", str(level.name)]
    if launcher.get("logFormat") in ("text", "json"):
        arguments += ["--log-format", str(launcher["logFormat"])]
    target = launcher.get("logFile") or launcher.get("logfile")
    name = target if isinstance(target, str) else getattr(target, "name", None)
    if isinstance(name, str) and name not in ("-", "<stdout>", "<stderr>"):
        arguments += ["--log-file", name]
    return arguments


def worker_command(executable: str, launcher: Any, arguments: Sequence[str],
                   listening: bool = True) -> list[str]:
    """The whole command line of a worker (of a spare worker if not C{listening})."""
    fds = f"{LISTEN_FD if listening else '-'},{CHANNEL_FD}"
    return [executable, "-m", "twisted", *launcher_arguments(launcher), "penbal",
            "--worker-fds", fds, *arguments]
