# -*- test-case-name: tests.integration.test_edges_proxy_mariadb -*-
"""
The PROXY protocol against a real MariaDB server: with C{--send-proxy v1|v2} the database sees
the client's own 127.0.0.x (or ::1) address, and through a front balancer that sends a header
(C{--accept-proxy}) it still does.

One standalone MariaDB (not Galera) is started for this module in a temporary directory, on
127.0.0.1, with C{proxy_protocol_networks=127.0.0.0/8,::1/128}; it is stopped by its pid when
the test process exits.  Without C{mariadbd} these tests fail: they never skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql
from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.process import PenbalProcess, free_port, wait_for

USER, PASSWORD = "edge", "edge-test-pw"
_SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"


class MariaDB:
    """A throwaway MariaDB server on 127.0.0.1 that accepts PROXY headers from loopback."""

    def __init__(self) -> None:
        missing = [tool for tool in ("mariadbd", "mariadb-install-db", "mariadb")
                   if shutil.which(tool, path=_SBIN) is None]
        if missing:
            raise AssertionError(
                f"MariaDB is not installed (missing {', '.join(missing)}): "
                "apt-get install mariadb-server mariadb-client"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="penbal-mdb-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.socket = self.dir / "mysqld.sock"
        self.config = self.dir / "my.cnf"
        self.config.write_text(
            "[mysqld]\n"
            "user = mysql\n"
            f"datadir = {self.dir / 'data'}\n"
            f"socket = {self.socket}\n"
            f"pid_file = {self.dir / 'mysqld.pid'}\n"
            f"log_error = {self.dir / 'error.log'}\n"
            f"port = {self.port}\n"
            "bind_address = 127.0.0.1\n"
            "skip_name_resolve = ON\n"
            "skip_log_bin\n"
            "performance_schema = OFF\n"
            "innodb_buffer_pool_size = 32M\n"
            "innodb_log_file_size = 16M\n"
            "max_connect_errors = 100000\n"
            "proxy_protocol_networks = 127.0.0.0/8,::1/128\n"
        )
        shutil.chown(self.dir, "mysql", "mysql")
        subprocess.run(
            [shutil.which("mariadb-install-db", path=_SBIN) or "mariadb-install-db",
             f"--defaults-file={self.config}", "--auth-root-authentication-method=socket",
             "--skip-test-db"],
            check=True, capture_output=True, timeout=120,
        )
        self.process = subprocess.Popen(
            [shutil.which("mariadbd", path=_SBIN) or "mariadbd", f"--defaults-file={self.config}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"MariaDB did not start: {self.error_log()}")
            time.sleep(0.2)
        self.sql(
            f"CREATE USER '{USER}'@'127.0.0.%' IDENTIFIED BY '{PASSWORD}';"
            f"CREATE USER '{USER}'@'::1' IDENTIFIED BY '{PASSWORD}';"
            f"GRANT PROCESS ON *.* TO '{USER}'@'127.0.0.%';"
            f"GRANT PROCESS ON *.* TO '{USER}'@'::1';"
        )

    def _ready(self) -> bool:
        try:
            self.sql("SELECT 1")
        except subprocess.SubprocessError:
            return False
        return True

    def sql(self, statement: str) -> str:
        """Run SQL as root over the unix socket."""
        done = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "--user=root",
             "--batch", "--skip-column-names", "--execute", statement],
            capture_output=True, text=True, timeout=20,
        )
        if done.returncode != 0:
            raise subprocess.SubprocessError(done.stderr)
        return done.stdout

    def error_log(self) -> str:
        try:
            return (self.dir / "error.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no error log)"

    def stop(self) -> None:
        """SIGTERM our server by its pid, wait, remove its directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


_server: MariaDB | None = None


def server() -> MariaDB:
    """The module's MariaDB, started on first use."""
    global _server
    if _server is None:
        _server = MariaDB()
        atexit.register(_server.stop)
    return _server


def whoami(port: int, source: str, host: str = "127.0.0.1") -> tuple[str, str]:
    """Connect from C{source} through penbal; return USER() and this session's processlist host."""
    connection = pymysql.connect(
        host=host, port=port, user=USER, password=PASSWORD, bind_address=source,
        connect_timeout=10, read_timeout=10, write_timeout=10,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT USER()")
            (user,) = cursor.fetchone()
            cursor.execute(
                "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"
            )
            (processlist_host,) = cursor.fetchone()
        return str(user), str(processlist_host)
    finally:
        connection.close()


class SendProxyTests(SynchronousTestCase):
    """--send-proxy: MariaDB parses penbal's header and sees the real client."""

    def penbal(self, *args: str, host: str = "127.0.0.1") -> int:
        port = free_port(host)
        listen = f"tcp6:{port}:interface=\\:\\:1" if ":" in host else f"127.0.0.1:{port}"
        proc = PenbalProcess([*args, listen, f"127.0.0.1:{server().port}"],
                             listen_port=port, host=host)
        self.addCleanup(proc.stop)
        return port

    def test_v1(self) -> None:
        """A v1 header gives MariaDB the client's 127.0.0.x address and port."""
        port = self.penbal("--send-proxy", "v1")
        user, host = whoami(port, "127.0.0.5")
        self.assertEqual(user, f"{USER}@127.0.0.5")
        self.assertTrue(host.startswith("127.0.0.5:"), host)

    def test_v2(self) -> None:
        """A v2 header does the same."""
        port = self.penbal("--send-proxy", "v2")
        self.assertEqual(whoami(port, "127.0.0.6")[0], f"{USER}@127.0.0.6")

    def test_v2_ipv6_client(self) -> None:
        """An IPv6 client (::1) reaches an IPv4 MariaDB as ::1."""
        port = self.penbal("--send-proxy", "v2", host="::1")
        self.assertEqual(whoami(port, "::1", host="::1")[0], f"{USER}@::1")

    def test_without_header_balancer_address(self) -> None:
        """Control: without --send-proxy, MariaDB sees the balancer's address, not the client's."""
        port = self.penbal()
        self.assertEqual(whoami(port, "127.0.0.5")[0], f"{USER}@127.0.0.1")


class AcceptProxyTests(SynchronousTestCase):
    """--accept-proxy: the address in the front balancer's header is the client everywhere."""

    def chain(self, *inner_options: str) -> int:
        inner_port, outer_port = free_port(), free_port()
        inner = PenbalProcess(
            ["--accept-proxy", "--send-proxy", "v1", *inner_options,
             f"127.0.0.1:{inner_port}", f"127.0.0.1:{server().port}"],
            listen_port=inner_port,
        )
        self.addCleanup(inner.stop)
        outer = PenbalProcess(
            ["--send-proxy", "v2", f"127.0.0.1:{outer_port}", f"127.0.0.1:{inner_port}"],
            listen_port=outer_port,
        )
        self.addCleanup(outer.stop)
        return outer_port

    def test_chain(self) -> None:
        """Client 127.0.0.7 -> penbal (v2) -> penbal (accept, v1) -> MariaDB sees 127.0.0.7."""
        port = self.chain()
        self.assertEqual(whoami(port, "127.0.0.7")[0], f"{USER}@127.0.0.7")

    def test_acl_uses_header_address(self) -> None:
        """The inner balancer's ACL judges the address from the header, not the front's."""
        port = self.chain("--acl", "0 deny 127.0.0.8")
        self.assertEqual(whoami(port, "127.0.0.9")[0], f"{USER}@127.0.0.9")
        with self.assertRaises(pymysql.err.OperationalError):
            whoami(port, "127.0.0.8")

    def test_direct_client_without_header_refused(self) -> None:
        """A client that skips the front balancer (no header) is closed by --accept-proxy."""
        inner_port = free_port()
        inner = PenbalProcess(
            ["--accept-proxy", "--send-proxy", "v1", f"127.0.0.1:{inner_port}",
             f"127.0.0.1:{server().port}"], listen_port=inner_port,
        )
        self.addCleanup(inner.stop)
        started = time.monotonic()
        with self.assertRaises(pymysql.err.OperationalError):
            whoami(inner_port, "127.0.0.5")
        # MySQL clients wait for the server to speak: the header timeout (5 s) closes them.
        self.assertLess(time.monotonic() - started, 9)
        wait_for(lambda: "no PROXY header within" in inner.log(), 5, "the refusal in the log")
