# -*- test-case-name: tests.testing.test_galera_cluster -*-
"""
Blocking helpers for the Galera test cluster: running SQL through the
C{mariadb} client over a unix socket, and watching the server processes this
harness started, by pid only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from pathlib import Path

Row = tuple[str | None, ...]

_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_RECOVERED = re.compile(r"Recovered position:\s*([0-9a-fA-F-]{36}:-?\d+)")


def is_synced(status: Mapping[str, str]) -> bool:
    """
    True if a node's merged wsrep status says Synced (4), ready and in the
    Primary component.
    """
    return (
        status.get("wsrep_local_state") == "4"
        and status.get("wsrep_ready") == "ON"
        and status.get("wsrep_cluster_status") == "Primary"
    )


class SQLError(Exception):
    """
    The C{mariadb} client could not connect or the statement failed.
    """


def parse_xml_rows(text: str) -> list[Row]:
    """
    Parse the output of C{mariadb --xml} into rows; SQL NULL becomes C{None}.
    Rows of several result sets are concatenated.
    """
    rows: list[Row] = []
    if not text.strip():
        return rows
    # Several statements give several <resultset> documents; wrap them.
    body = re.sub(r"<\?xml[^>]*\?>", "", text)
    root = ElementTree.fromstring(
        f'<all xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{body}</all>'
    )
    for row in root.iter("row"):
        values: list[str | None] = []
        for field in row.findall("field"):
            if field.get(_XSI_NIL) == "true":
                values.append(None)
            else:
                values.append(field.text or "")
        rows.append(tuple(values))
    return rows


def run_sql(socket_path: Path, statement: str, timeout: float = 10.0) -> list[Row]:
    """
    Run C{statement} as C{root} through C{socket_path} with the C{mariadb}
    client, bounded by C{timeout} seconds (a frozen server accepts the
    connection and never answers).
    """
    command = [
        "mariadb",
        "--no-defaults",
        "--protocol=socket",
        f"--socket={socket_path}",
        "--user=root",
        f"--connect-timeout={max(1, int(timeout))}",
        "--xml",
        "--execute",
        statement,
    ]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise SQLError(f"no answer within {timeout}s on {socket_path}") from e
    if done.returncode != 0:
        raise SQLError(done.stderr.strip() or f"mariadb exited {done.returncode}")
    return parse_xml_rows(done.stdout)


def parse_recovered_position(log_text: str) -> str:
    """
    Find the last C{Recovered position: UUID:SEQNO} in a C{--wsrep-recover}
    error log.
    """
    found = _RECOVERED.findall(log_text)
    if not found:
        raise ValueError("no 'Recovered position' in the --wsrep-recover log")
    return str(found[-1])


def _proc_state(pid: int) -> str | None:
    """The one-letter state of C{pid} from /proc, or None if it is gone."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    return stat_line.rsplit(")", 1)[1].split()[0]


def is_our_server(pid: int, config_file: Path) -> bool:
    """
    True if C{pid} is a live (not zombie) C{mariadbd} started with
    C{config_file}: a guard against signalling a recycled pid.
    """
    state = _proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (
        bool(argv)
        and argv[0].endswith(b"mariadbd")
        and (f"--defaults-file={config_file}".encode() in argv)
    )


class ServerProcess:
    """
    One C{mariadbd} this harness started: either a child of this process
    (a L{subprocess.Popen}) or, after a reload from the state file, a bare pid
    that is checked against /proc before every signal.
    """

    def __init__(
        self,
        pid: int,
        config_file: Path,
        popen: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.pid = pid
        self.config_file = config_file
        self._popen = popen

    def alive(self) -> bool:
        """True while the server process exists (zombies count as gone)."""
        if self._popen is not None:
            return self._popen.poll() is None
        return is_our_server(self.pid, self.config_file)

    def signal(self, signum: signal.Signals) -> bool:
        """
        Send C{signum} if the process is still ours and alive; return whether
        it was sent.
        """
        if not self.alive():
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to C{timeout} seconds for the process to end."""
        if self._popen is not None:
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        return poll_until(lambda: not self.alive(), timeout)


def poll_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """
    Evaluate C{condition} every C{interval} seconds until it is true or
    C{timeout} seconds have passed; return its last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval, remaining))


def tail(path: Path, lines: int = 15) -> str:
    """The last C{lines} lines of C{path}, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} is missing)"
    return "\n".join(text.splitlines()[-lines:])
