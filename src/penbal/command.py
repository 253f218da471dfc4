# -*- test-case-name: tests.integration.test_command -*-
"""
The C{penbal} command: Pen's command line, run by Twisted's own launchers.

C{penbal -l pen.log -p pen.pid localhost:3306 node1:3306 ...} works as C{pen} does: C{-l} is
the access log, C{-p} the pid file, and penbal goes into the background unless C{-f}.  Every
other option is C{twist penbal}'s.

In the background it is C{twistd penbal} (Twisted's daemonizing: two forks, a new session,
start-up errors reported to the command before it exits, the pid file removed at exit); with
C{-f} it is C{twist penbal}, run by Twisted's application runner with a pid file.  The command
line is checked first, so a mistake is one line on the terminal and nothing starts.

The foreground path uses Twisted's runner (C{twisted.application.runner}, which C{twist} runs
on and which keeps a pid file) and C{twist}'s own steps; those modules are private to Twisted
(checked with Twisted 26.10) and imported here only, when C{-f} is given.
"""

from __future__ import annotations

import getopt
import sys
from collections.abc import Sequence
from typing import Any

from twisted.python import usage

from penbal.options import Options

#: The launcher's own options (not penbal's): name -> whether it takes a value.
LAUNCHER_OPTIONS = {"foreground": False, "pid-file": True, "log-file": True,
                    "log-format": True, "log-level": True}
_LOG_FORMATS = ("text", "json")
_LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


class CommandOptions(Options):
    """C{penbal}'s command line: C{twist penbal}'s options and Pen's C{-p} and C{-f}."""

    synopsis = (
        "[-f] [-p PIDFILE] [-l ACCESSLOG] [options] LISTEN BACKEND [BACKEND ...]\n"
        "  as Pen: into the background unless -f; every option of twist penbal applies"
    )

    optFlags = [
        ["foreground", "f", "Stay in the foreground (Pen's -f); otherwise penbal goes into the"
         " background (twistd) once it listens."],
    ]
    optParameters = [
        ["pid-file", "p", None, "Write penbal's process id to this file (Pen's -p); removed"
         " at exit."],
        ["log-file", None, None, "Event log (health, errors, control actions): a file, or -"
         " for standard output. [default: standard output with -f, else syslog]"],
        ["log-format", None, "text", "Event log format with -f: text or json."],
        ["log-level", None, "info", "Lowest level in the event log with -f: debug, info, warn,"
         " error or critical."],
    ]

    def getSynopsis(self) -> str:
        return f"Usage: penbal {self.synopsis}"

    def postOptions(self) -> None:
        if self["log-format"] not in _LOG_FORMATS:
            raise usage.UsageError(
                f"expected one of text|json for --log-format, got {self['log-format']!r}")
        if self["log-level"] not in _LOG_LEVELS:
            raise usage.UsageError(f"expected one of {'|'.join(_LOG_LEVELS)} for --log-level,"
                                   f" got {self['log-level']!r}")
        if not self["foreground"] and (self["log-format"], self["log-level"]) != ("text", "info"):
            raise usage.UsageError("--log-format and --log-level need -f (in the background"
                                   " the event log is twistd's text log)")
        super().postOptions()


def penbal_arguments(command: CommandOptions, argv: Sequence[str]) -> list[str]:
    """C{argv} without the launcher's options: what C{twist penbal} or C{twistd penbal} gets.

    Split exactly as C{usage.Options} splits it (getopt, options up to the first argument)."""
    flags, arguments = getopt.getopt(list(argv), command.shortOpt, command.longOpt)
    launcher_short = {"-" + short for short, long in command.synonyms.items()
                      if long in LAUNCHER_OPTIONS and len(short) == 1}
    launcher_long = {"--" + name for name in LAUNCHER_OPTIONS}
    kept: list[str] = []
    for flag, value in flags:
        if flag in launcher_short or flag in launcher_long:
            continue
        kept.append(flag)
        name = flag.lstrip("-")
        takes_value = (f"{name}:" in command.shortOpt if len(flag) == 2
                       else f"{name}=" in command.longOpt)
        if takes_value:
            kept.append(value)
    return [*kept, *arguments]


def twistd_arguments(command: CommandOptions, penbal: list[str]) -> list[str]:
    """The C{twistd} command line that runs penbal in the background."""
    pid_file = command["pid-file"] or ""  # twistd writes none for ""
    log = (["--logfile", command["log-file"]] if command["log-file"] is not None
           else ["--syslog", "--prefix", "penbal"])
    return ["--pidfile", pid_file, *log, "penbal", *penbal]


def twist_arguments(command: CommandOptions, penbal: list[str]) -> list[str]:
    """The C{twist} command line that runs penbal in the foreground."""
    return ["twist", "--log-file", command["log-file"] or "-",
            "--log-format", command["log-format"], "--log-level", command["log-level"],
            "penbal", *penbal]


def run_in_background(arguments: list[str]) -> None:
    """C{twistd ARGUMENTS}: returns (exit 0) once penbal listens in the background."""
    from twisted.scripts._twistd_unix import ServerOptions
    from twisted.scripts.twistd import runApp

    config = ServerOptions()
    try:
        config.parseOptions(arguments)
    except usage.error as e:
        raise SystemExit(f"penbal: error: {e}") from None
    runApp(config)  # what twistd's own entry point does after parsing sys.argv


def run_in_foreground(arguments: list[str], pid_file: str | None) -> None:
    """C{twist ARGUMENTS} with a pid file, on Twisted's application runner."""
    from twisted.application.app import _exitWithSignal
    from twisted.application.runner._pidfile import PIDFile, nonePIDFile
    from twisted.application.runner._runner import Runner
    from twisted.application.twist._twist import Twist
    from twisted.internet.interfaces import _ISupportsExitSignalCapturing
    from twisted.python.filepath import FilePath

    pid = PIDFile(FilePath(pid_file)) if pid_file else nonePIDFile

    class PidFileTwist(Twist):
        """C{twist}, whose runner also keeps a pid file."""

        @staticmethod
        def run(twistOptions: Any) -> None:
            reactor = twistOptions["reactor"]
            Runner(reactor=reactor, pidFile=pid, defaultLogLevel=twistOptions["logLevel"],
                   logFile=twistOptions["logFile"],
                   fileLogObserverFactory=twistOptions["fileLogObserverFactory"]).run()
            if _ISupportsExitSignalCapturing.providedBy(reactor) and reactor._exitSignal:
                _exitWithSignal(reactor._exitSignal)

    PidFileTwist.main(arguments)


def main(argv: Sequence[str] | None = None) -> None:
    """The C{penbal} console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = CommandOptions()
    command.parseOptions(argv)  # --help, --version, and every mistake as one line
    penbal = penbal_arguments(command, argv)
    if command["foreground"]:
        run_in_foreground(twist_arguments(command, penbal), command["pid-file"])
    else:
        run_in_background(twistd_arguments(command, penbal))
