# -*- test-case-name: tests.control.test_executor -*-
"""
Carry out one parsed control command on the running balancer and answer it.

A query reads the status snapshot; a change edits the captured configuration and reconciles
the balancer with it, so the control port, the config file and a reload share one meaning of
every command.  Each change is logged with who asked; a refused one changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.logger import Logger

from penbal.config.edit import EditError, apply_edit, mode_line
from penbal.config.file import number, render, write_file
from penbal.config.reconcile import ReconcileError, capture, reconcile
from penbal.penctl.commands import (
    HELP,
    BadCommand,
    Blank,
    Command,
    Edit,
    Exit,
    Ignored,
    Parsed,
    Prompt,
    Quit,
    Reload,
    RemoveServer,
    SetValue,
    ShowHelp,
    ShowMode,
    ShowRecent,
    ShowServer,
    ShowServers,
    ShowStatus,
    ShowValue,
    Unsupported,
    Write,
)
from penbal.runtime import Runtime
from penbal.status.snapshot import backend_status, build_snapshot, render_json
from penbal.status.text import recent_lines, server_line, summary_lines

log = Logger(namespace="penbal.control")


@dataclass
class Reply:
    """The answer to one line: lines to send, and what happens to the connection."""

    lines: list[str]
    close: bool = False
    prompt: bool | None = None

    @property
    def failed(self) -> bool:
        """True if the answer is an error line."""
        return bool(self.lines) and self.lines[0].startswith("error:")


def error(message: str) -> Reply:
    """The one-line answer to a refused command."""
    return Reply([f"error: {message}"])


class Executor:
    """Runs control commands against one L{Runtime}."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def execute(self, parsed: Parsed, who: str, text: str = "") -> Reply:
        """Answer C{parsed}, a line from C{who}; never raises."""
        try:
            if isinstance(parsed, BadCommand):
                return error(parsed.message)
            if isinstance(parsed, Edit):
                return self._edit(parsed, who, text)
            return self._query(parsed, who)
        except Exception as e:  # the control port stays up whatever a command hits
            log.failure("control command {text!r} from {who} failed", text=text, who=who)
            return error(f"internal error ({type(e).__name__}): nothing was changed if the "
                         "command was refused before applying; see the log")

    def _edit(self, edit: Edit, who: str, text: str) -> Reply:
        runtime = self.runtime
        try:
            desired = apply_edit(capture(runtime), edit, runtime.policies())
            changes = reconcile(
                runtime, desired, close_removed=isinstance(edit, RemoveServer) and edit.now
            )
        except (EditError, ReconcileError) as e:
            log.info("control: {who} {text!r} refused: {why}", who=who, text=text, why=str(e))
            return error(str(e))
        log.info(
            "control: {who} {text!r}: {changes}",
            who=who,
            text=text,
            changes="; ".join(changes) or "no change",
            penbal_event="control",
        )
        if isinstance(edit, SetValue):
            return Reply([self._value(edit.name)])
        return Reply(changes)

    def _value(self, name: str) -> str:
        runtime = self.runtime
        settings = runtime.balancer.settings
        values: dict[str, object] = {
            "blacklist": number(settings.blacklist),
            "timeout": number(settings.timeout),
            "tracking": number(runtime.context.tracking),
            "clients_max": runtime.context.clients,
            "conn_max": settings.max_connections,
            "client_acl": runtime.client_acl,
            "control_acl": runtime.control_acl,
            "policy": runtime.policy.describe(),
            "emergency": settings.emergency.address if settings.emergency else "none",
            "listen": runtime.endpoints.get("listen", ""),
            "control": runtime.endpoints.get("control", ""),
            "pid": runtime.pid,
            "log": "twisted.logger (set with twist --log-file)",
        }
        return str(values[name])

    def _query(self, query: Command, who: str) -> Reply:
        runtime = self.runtime
        if isinstance(query, Blank | Ignored):
            return Reply([])
        if isinstance(query, Unsupported):
            return error(query.reason)
        if isinstance(query, ShowServers):
            snapshot = build_snapshot(runtime)
            return Reply([server_line(backend) for backend in snapshot.backends])
        if isinstance(query, ShowServer):
            pool = runtime.balancer.pool
            if query.index >= len(pool):
                return error(f"no server {query.index}: the table has {len(pool)} servers")
            return Reply([server_line(backend_status(runtime, pool[query.index], runtime.now()))])
        if isinstance(query, ShowStatus):
            snapshot = build_snapshot(runtime)
            if query.form == "json":
                return Reply([render_json(snapshot)])
            if query.form == "text":
                return Reply(summary_lines(snapshot))
            from penbal.status.page import render_page  # twisted.web: only when asked for

            return Reply(render_page(snapshot).decode("utf-8").splitlines())
        if isinstance(query, ShowMode):
            return Reply([f"{mode_line(capture(runtime))} policy {runtime.policy.describe()}"])
        if isinstance(query, ShowValue):
            return Reply([self._value(query.name)])
        if isinstance(query, ShowRecent):
            return Reply(recent_lines(build_snapshot(runtime), query.seconds))
        if isinstance(query, ShowHelp):
            return Reply(list(HELP))
        if isinstance(query, Write):
            return self._write(query, who)
        if isinstance(query, Reload):
            if runtime.reload is None:
                return error("no config file to reload: start penbal with -F FILE")
            log.info("control: {who} asked for a reload", who=who)
            outcome = runtime.reload()
            return Reply([outcome])
        if isinstance(query, Exit):
            if runtime.stop is None:
                return error("exit is not available here")
            log.info("control: {who} asked penbal to stop", who=who, penbal_event="control")
            runtime.stop()
            return Reply(["stopping: new connections are refused, live ones may finish"],
                         close=True)
        if isinstance(query, Prompt):
            return Reply([], prompt=True)
        if isinstance(query, Quit):
            return Reply([], close=True)
        return error(f"{type(query).__name__} is not supported here")

    def _write(self, query: Write, who: str) -> Reply:
        runtime = self.runtime
        text = render(capture(runtime), runtime.now(), runtime.version)
        if query.path == "-":
            return Reply(text.splitlines())
        path = query.path or runtime.config_path
        if path is None:
            return error("no config file: expected write FILE, write -, or penbal started "
                         "with -F FILE")
        try:
            write_file(path, text)
        except OSError as e:
            return error(f"cannot write {path}: {e.strerror or e}")
        log.info("control: {who} wrote the configuration to {path}", who=who, path=path,
                 penbal_event="control")
        return Reply([f"wrote {path}"])
