# -*- test-case-name: tests.workers.test_command -*-
"""
Tests of a worker's command line.
"""

from __future__ import annotations

import io

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from penbal.workers.command import launcher_arguments, worker_command


class CommandTests(SynchronousTestCase):
    def test_worker(self) -> None:
        """twist with the main process's reactor and logging, then penbal's own arguments."""
        launcher = {"reactorName": "penbal-epoll", "logLevel": LogLevel.warn,
                    "logFormat": "json", "logFile": io.StringIO()}
        self.assertEqual(
            worker_command("/py", launcher, ["--workers", "2", "3306", "127.0.0.9"]),
            ["/py", "-m", "twisted", "--reactor", "penbal-epoll", "--log-level", "warn",
             "--log-format", "json", "penbal", "--worker-fds", "3,4", "--workers", "2", "3306",
             "127.0.0.9"])

    def test_spare(self) -> None:
        """A spare worker has no socket yet."""
        self.assertIn("-,4", worker_command("/py", None, ["3306", "127.0.0.9"], listening=False))

    def test_log_file(self) -> None:
        """A log file named on the main process's command line is the workers' too."""

        class Named(io.StringIO):
            name = "/var/log/penbal.log"

        self.assertEqual(launcher_arguments({"logFile": Named()}),
                         ["--log-file", "/var/log/penbal.log"])

    def test_twistd(self) -> None:
        """Under twistd the workers log as text to its log file, made absolute (twistd
        changes directory later); a daemon's default log file is twistd.log."""

        def absolute(name: str) -> str:
            return "/run/dir/" + name

        self.assertEqual(launcher_arguments({"logfile": "p.log"}, absolute),
                         ["--log-format", "text", "--log-file", "/run/dir/p.log"])
        self.assertEqual(launcher_arguments({"logfile": None}, absolute),
                         ["--log-format", "text", "--log-file", "/run/dir/twistd.log"])
        self.assertEqual(launcher_arguments({"logfile": None, "nodaemon": True}, absolute),
                         ["--log-format", "text"])

    def test_not_a_launcher(self) -> None:
        """Options parsed without twist (tests, tools): nothing to pass on."""
        self.assertEqual(launcher_arguments(None), [])
