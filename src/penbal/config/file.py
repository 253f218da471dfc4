# -*- test-case-name: tests.config.test_file -*-
"""
Pen's config file (C{-F FILE}): control commands, one per line, applied after the command
line's options.  Reading builds a whole L{Configuration} or fails on the first bad line
(naming the file, the line and the reason); C{write} renders the running one back.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Collection, Iterable

from penbal.config.edit import EditError, apply_edit
from penbal.config.model import Configuration
from penbal.edges.acl import ACL_COUNT
from penbal.penctl.commands import (
    BadCommand,
    Blank,
    Edit,
    Ignored,
    Unsupported,
    parse_command,
)

MAX_SIZE = 4 * 1024 * 1024


class ConfigError(Exception):
    """A config file cannot be used; the message names the file, the line and the reason."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"config file {path}" + (f" line {line}" if line is not None else "")
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


def parse_lines(
    path: str, lines: Iterable[str], notes: list[str] | None = None
) -> list[tuple[int, Edit]]:
    """The configuration commands of a file's lines, with their line numbers.

    Pen settings that penbal cannot honour (C{log FILE}, C{web_stats FILE} ...) are skipped,
    so that files written by Pen load; each adds a line to C{notes}, for the log.
    """
    edits: list[tuple[int, Edit]] = []
    for number, line in enumerate(lines, 1):
        parsed = parse_command(line)
        if isinstance(parsed, BadCommand):
            raise ConfigError(path, number, parsed.message)
        if isinstance(parsed, Blank | Ignored):
            continue
        if isinstance(parsed, Unsupported):
            if notes is not None:
                notes.append(f"config file {path} line {number}: {parsed.reason}; "
                             f"{parsed.text!r} ignored")
            continue
        if not isinstance(parsed, Edit):
            raise ConfigError(
                path, number, f"{line.split()[0]!r} is not a configuration command here"
            )
        edits.append((number, parsed))
    return edits


def read_lines(path: str) -> list[str]:
    """The file's lines; L{ConfigError} if it cannot be read as text."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SIZE + 1)
    except OSError as e:
        raise ConfigError(path, None, f"cannot read it: {e.strerror or e}") from None
    if len(data) > MAX_SIZE:
        raise ConfigError(path, None, f"larger than {MAX_SIZE} bytes: expected a config file")
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(path, line, "not UTF-8 text") from None


def build(
    base: Configuration,
    path: str,
    lines: Iterable[str],
    policies: Collection[str],
    notes: list[str] | None = None,
) -> Configuration:
    """C{base} (the command line's configuration) with the file's commands applied in order."""
    config = base
    for number, edit in parse_lines(path, lines, notes):
        try:
            config = apply_edit(config, edit, policies)
        except EditError as e:
            raise ConfigError(path, number, str(e)) from None
    return config


def load(
    base: Configuration, path: str, policies: Collection[str], notes: list[str] | None = None
) -> Configuration:
    """Read and build; the whole file or a L{ConfigError} (skipped lines added to C{notes})."""
    return build(base, path, read_lines(path), policies, notes)


def number(value: float) -> str:
    """A setting's value as written: whole numbers without a fraction, others exactly."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render(config: Configuration, written: float, version: str) -> str:
    """The configuration as control commands that rebuild it from any command line."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(written))
    policy = config.policy
    lines = [
        f"# penbal configuration, written {stamp} by penbal {version}",
        "# Control commands, one per line; -F FILE applies them after the command line.",
        f"policy {policy.name}" + (f" {policy.base}" if policy.base else ""),
        "stubborn" if config.stubborn else "no stubborn",
        "http" if config.http else "no http",
        f"timeout {number(config.timeout)}",
        f"blacklist {number(config.blacklist)}",
        f"conn_max {config.conn_max}",
        f"tracking {number(config.tracking)}",
        f"clients_max {config.clients_max}",
        f"emergency {config.emergency.format()}" if config.emergency else "no emergency",
    ]
    for acl in range(ACL_COUNT):
        lines.append(f"no acl {acl}")
        lines.extend(f"acl {acl} {entry.format()}" for entry in config.acls[acl])
    lines.append(f"client_acl {config.client_acl}")
    lines.append(f"control_acl {config.control_acl}")
    lines.append("no servers")
    entries = [entry for entry in config.backends if not entry.retiring]
    lines.extend(f"add {entry.spec.format()}" for entry in entries)
    for index, entry in enumerate(entries):
        if entry.admin is not None and entry.admin.value != "up":
            lines.append(f"server {index} {entry.admin.value}")
        if entry.acl:
            lines.append(f"server {index} acl {entry.acl}")
    return "\n".join(lines) + "\n"


def write_file(path: str, text: str) -> None:
    """Replace C{path} with C{text} atomically (a crash leaves the old file or the new one)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".penbal-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if os.path.exists(path):
            os.chmod(temporary, os.stat(path).st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
