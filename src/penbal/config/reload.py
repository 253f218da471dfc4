# -*- test-case-name: tests.config.test_reload -*-
"""
Reading the config file at start-up and again on SIGHUP (or the C{reload} command).

The whole file is read and checked before anything changes: a file with any error is
rejected whole, logged with its file, line and reason, and the running configuration stays.
A good file is applied as a difference (see L{penbal.config.reconcile}): live connections,
counters, drain and blacklist state are kept.
"""

from __future__ import annotations

from twisted.logger import Logger

from penbal.config.file import ConfigError, load
from penbal.config.model import Configuration
from penbal.config.reconcile import ReconcileError, match, reconcile
from penbal.garbage import refreeze
from penbal.runtime import Runtime

log = Logger(namespace="penbal.config")


def apply_file(runtime: Runtime, path: str) -> list[str]:
    """Load C{path} over the command line's configuration and apply it; the changes made.

    Raises L{ConfigError} (nothing changed) if the file or its result is unusable.  Lines
    skipped because penbal cannot honour them (Pen's C{log FILE} ...) are logged as warnings.
    """
    notes: list[str] = []
    desired: Configuration = load(runtime.base, path, runtime.policies(), notes)
    try:
        changes = reconcile(runtime, match(desired, runtime))
    except ReconcileError as e:
        raise ConfigError(path, None, str(e)) from None
    for note in notes:
        log.warn("{note}", note=note, path=path, penbal_event="config-line-ignored")
    return changes


class Reloader:
    """Re-reads one config file into one running balancer."""

    def __init__(self, runtime: Runtime, path: str) -> None:
        self.runtime = runtime
        self.path = path

    def reload(self) -> str:
        """Apply the file now; the one-line outcome (also logged)."""
        try:
            changes = apply_file(self.runtime, self.path)
        except ConfigError as e:
            log.error(
                "reload rejected: {error}; the running configuration is unchanged",
                error=str(e),
                path=e.path,
                line=e.line,
                reason=e.reason,
                penbal_event="reload-rejected",
            )
            return f"error: {e}; the running configuration is unchanged"
        if changes:
            refreeze()  # what the reload replaced was frozen at start-up (see penbal.garbage)
        log.info(
            "reloaded {path}: {changes}",
            path=self.path,
            changes="; ".join(changes) or "no change",
            count=len(changes),
            penbal_event="reloaded",
        )
        return f"reloaded {self.path}: " + ("; ".join(changes) or "no change")
