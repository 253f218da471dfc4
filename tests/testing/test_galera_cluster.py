# -*- test-case-name: tests.testing.test_galera_cluster -*-
# Trial's assertion methods are unannotated, and mypy names a call through
# self after this module's classes, so untyped_calls_exclude cannot cover it.
# mypy: disable-error-code="no-untyped-call"
"""
Tests for L{penbal.testing.galera_cluster}: the layout and parsing helpers
alone, then a real 3-node MariaDB Galera cluster on 127.0.0.1.

The real-cluster tests fail (they do not skip) when MariaDB Galera is not
installed: run C{scripts/install-galera} first.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing._galera_config import busy_ports, node_layouts, render_my_cnf
from penbal.testing._galera_process import parse_recovered_position, parse_xml_rows
from penbal.testing._galera_start import safe_to_bootstrap
from penbal.testing.galera_cluster import GaleraCluster, SQLError, is_synced, require_galera

# Away from the defaults (3311-3313, 4567-4589), so that these tests do not
# collide with a demo cluster started by scripts/galera-cluster.
SQL_BASE = 3340
GCOMM_BASE = 4657


class LayoutTests(SynchronousTestCase):
    """
    Ports, option files and output parsing, without any server.
    """

    def test_ports(self) -> None:
        """
        Node i gets SQL port base+i, gcomm 4557+10i, IST gcomm+1, SST gcomm+2.
        """
        cluster = GaleraCluster("/tmp/penbal-unused", nodes=3)
        self.assertEqual([cluster.node_port(i) for i in (1, 2, 3)], [3311, 3312, 3313])
        node = cluster.layout(2)
        self.assertEqual((node.gcomm_port, node.ist_port, node.sst_port), (4577, 4578, 4579))
        self.assertEqual(cluster.socket_path(3), "/tmp/penbal-unused/node3/mysqld.sock")

    def test_loopback_only(self) -> None:
        """
        Every address in a node's my.cnf is on 127.0.0.1, and it has the fast
        failure detection options.
        """
        layouts = node_layouts(Path("/tmp/x"), 3, 3310, 4557)
        text = render_my_cnf(layouts[0], layouts, "t")
        self.assertIn("bind_address = 127.0.0.1", text)
        self.assertIn("gcomm://127.0.0.1:4567,127.0.0.1:4577,127.0.0.1:4587", text)
        self.assertIn("gmcast.listen_addr=tcp://127.0.0.1:4567", text)
        self.assertIn("evs.suspect_timeout=PT2S", text)
        self.assertNotIn("0.0.0.0", text)

    def test_parse_xml_rows(self) -> None:
        """
        C{mariadb --xml} output of several result sets becomes one list of
        rows, SQL NULL becoming None.
        """
        output = (
            '<?xml version="1.0"?>\n'
            '<resultset statement="a" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            '  <row><field name="a">1</field><field name="b" xsi:nil="true" /></row>\n'
            "</resultset>\n"
            '<?xml version="1.0"?>\n'
            '<resultset statement="b" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            '  <row><field name="c">x&amp;y</field><field name="d"></field></row>\n'
            "</resultset>\n"
        )
        self.assertEqual(parse_xml_rows(output), [("1", None), ("x&y", "")])
        self.assertEqual(parse_xml_rows(""), [])

    def test_parse_recovered_position(self) -> None:
        """
        The last C{Recovered position} of a C{--wsrep-recover} log is found.
        """
        log = (
            "[Note] WSREP: Recovered position: 0a4fc1dc-e8b9-11f1-ac10-7665b5262c98:14\n"
            "[Note] WSREP: Recovered position: 0a4fc1dc-e8b9-11f1-ac10-7665b5262c98:15\n"
        )
        self.assertEqual(parse_recovered_position(log), "0a4fc1dc-e8b9-11f1-ac10-7665b5262c98:15")
        self.assertRaises(ValueError, parse_recovered_position, "nothing here")

    def test_write_credentials(self) -> None:
        """
        The credentials file is a [client] section for the check user, mode 600.
        """
        cluster = GaleraCluster("/tmp/penbal-unused", check_password="s3cret")
        path = Path(self.mktemp())
        cluster.write_credentials(str(path))
        self.assertEqual(path.read_text(), "[client]\nuser=penbal_check\npassword=s3cret\n")
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)

    def test_password_characters(self) -> None:
        """
        A password that would need quoting in SQL or in an option file is
        refused.
        """
        self.assertRaises(ValueError, GaleraCluster, "/tmp/x", check_password="a'b")
        self.assertRaises(ValueError, GaleraCluster, "/tmp/x", app_password="a#b")

    def test_is_synced(self) -> None:
        """
        Synced means state 4, ready and Primary.
        """
        good = {"wsrep_local_state": "4", "wsrep_ready": "ON", "wsrep_cluster_status": "Primary"}
        self.assertTrue(is_synced(good))
        self.assertFalse(is_synced({**good, "wsrep_cluster_status": "non-Primary"}))
        self.assertFalse(is_synced({**good, "wsrep_local_state": "2"}))

    def test_require_galera_missing(self) -> None:
        """
        Without MariaDB and Galera, L{require_galera} names what is missing and
        the script that installs it.
        """
        empty = self.mktemp()
        os.mkdir(empty)
        error = self.assertRaises(
            RuntimeError, require_galera, empty, os.path.join(empty, "libgalera_smm.so")
        )
        self.assertIn("mariadbd", str(error))
        self.assertIn("scripts/install-galera", str(error))

    def test_busy_ports(self) -> None:
        """
        A port something already listens on at 127.0.0.1 is reported busy.
        """
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            layouts = node_layouts(Path("/tmp/x"), 1, port - 1, 1)
            self.assertIn(port, busy_ports(layouts))


    def test_safe_to_bootstrap(self) -> None:
        """
        Only a node whose grastate.dat says safe_to_bootstrap: 1 (the last to
        stop cleanly) is safe to bootstrap from; a missing file is not.
        """
        base = Path(self.mktemp())
        layouts = node_layouts(base, 2, 3310, 4557)
        for node, flag in zip(layouts, ("1", "0"), strict=True):
            node.datadir.mkdir(parents=True)
            (node.datadir / "grastate.dat").write_text(
                f"# GALERA saved state\nversion: 2.1\nseqno:   42\nsafe_to_bootstrap: {flag}\n"
            )
        self.assertEqual([safe_to_bootstrap(n) for n in layouts], [True, False])
        self.assertFalse(safe_to_bootstrap(node_layouts(base / "none", 1, 3310, 4557)[0]))

    def test_restart_cluster_order(self) -> None:
        """
        restart_cluster refuses an order that does not name every node once,
        before it stops anything.
        """
        cluster = GaleraCluster("/tmp/penbal-unused", nodes=3)
        error = self.assertRaises(ValueError, cluster.restart_cluster, [1, 2, 2])
        self.assertIn("every node once", str(error))


class RealClusterTests(SynchronousTestCase):
    """
    A real 3-node cluster, fresh for each test.
    """

    def setUp(self) -> None:
        try:
            require_galera()
        except RuntimeError as e:
            self.fail(str(e))
        basedir = tempfile.mkdtemp(prefix="penbal-galera-", dir="/tmp")
        self.addCleanup(shutil.rmtree, basedir, True)
        self.cluster = GaleraCluster(basedir, base_port=SQL_BASE, gcomm_base=GCOMM_BASE)
        self.addCleanup(self.cluster.stop)
        self.cluster.start(timeout=120)

    def client(self, i: int, defaults: Path, *args: str) -> list[str]:
        """
        Run the C{mariadb} client over TCP to node C{i} with the option file
        C{defaults}; return its output lines.
        """
        done = subprocess.run(
            [
                "mariadb",
                f"--defaults-file={defaults}",
                "--protocol=tcp",
                "--host=127.0.0.1",
                f"--port={self.cluster.node_port(i)}",
                "--connect-timeout=5",
                "--batch",
                "--skip-column-names",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
        if done.returncode != 0:
            raise SQLError(done.stderr.strip())
        return done.stdout.splitlines()

    def test_all_synced(self) -> None:
        """
        After start every node is Synced in a Primary cluster of size 3.
        """
        for i in (1, 2, 3):
            status = self.cluster.status(i)
            self.assertEqual(status["wsrep_local_state"], "4")
            self.assertEqual(status["wsrep_cluster_size"], "3")
            self.assertEqual(status["wsrep_cluster_status"], "Primary")
            self.assertEqual(status["wsrep_node_name"], f"node{i}")
            self.assertEqual(status["wsrep_reject_queries"], "NONE")
            os.kill(self.cluster.pid(i), 0)

    def test_users(self) -> None:
        """
        The check user reads wsrep status over TCP but no table; the app user
        writes to C{sbtest} on one node and the write is on the others.
        """
        check = Path(self.mktemp())
        self.cluster.write_credentials(str(check))
        lines = self.client(2, check, "-e", "SHOW GLOBAL STATUS LIKE 'wsrep_local_state'")
        self.assertEqual(lines, ["wsrep_local_state\t4"])
        self.assertRaises(SQLError, self.client, 2, check, "-e", "SELECT * FROM mysql.user")
        app = Path(self.mktemp())
        app.write_text(f"[client]\nuser=penbal_app\npassword={self.cluster.app_password}\n")
        self.client(1, app, "sbtest", "-e", "CREATE TABLE t (id INT PRIMARY KEY)")
        self.client(1, app, "sbtest", "-e", "INSERT INTO t VALUES (7)")
        self.assertEqual(self.client(3, app, "sbtest", "-e", "SELECT id FROM t"), ["7"])

    def test_desync_and_reject(self) -> None:
        """
        C{desync} puts a node in state 2 and back to 4; C{reject_queries}
        sets C{wsrep_reject_queries} while the node stays Synced.
        """
        self.cluster.desync(2)
        status = self.cluster.status(2)
        self.assertEqual(status["wsrep_local_state"], "2")
        self.assertEqual(status["wsrep_desync"], "ON")
        self.cluster.desync(2, on=False)
        self.assertEqual(self.cluster.status(2)["wsrep_local_state"], "4")
        self.cluster.reject_queries(1, "ALL")
        status = self.cluster.status(1)
        self.assertEqual(status["wsrep_reject_queries"], "ALL")
        self.assertEqual(status["wsrep_local_state"], "4")
        self.cluster.reject_queries(1, "NONE")
        self.assertEqual(self.cluster.status(1)["wsrep_reject_queries"], "NONE")

    def test_kill9_and_restart(self) -> None:
        """
        After C{kill9} the others drop the node; C{restart} brings it back
        Synced in a cluster of 3 with a new pid.
        """
        old_pid = self.cluster.pid(3)
        self.cluster.kill9(3)
        self.assertFalse(self.cluster.is_running(3))
        self.assertRaises(SQLError, self.cluster.sql, 3, "SELECT 1", 2.0)
        self.cluster.wait_evicted(3, timeout=30)
        self.assertEqual(self.cluster.status(1)["wsrep_cluster_size"], "2")
        self.cluster.restart(3, timeout=60)
        self.assertNotEqual(self.cluster.pid(3), old_pid)
        for i in (1, 2, 3):
            self.assertEqual(self.cluster.status(i)["wsrep_cluster_size"], "3")
        self.assertEqual(self.cluster.status(3)["wsrep_local_state"], "4")

    def test_freeze_and_thaw(self) -> None:
        """
        A frozen node does not answer and is dropped by the others; after
        C{thaw} it rejoins.
        """
        self.cluster.freeze(2)
        self.assertRaises(SQLError, self.cluster.sql, 2, "SELECT 1", 2.0)
        self.cluster.wait_evicted(2, timeout=30)
        self.cluster.thaw(2)
        status = self.cluster.wait_rejoined(2, timeout=60)
        self.assertEqual(status["wsrep_cluster_size"], "3")
