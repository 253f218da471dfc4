# -*- test-case-name: tests.testing.test_galera_cluster -*-
"""
The steps that bring a Galera test cluster up from nothing, and the
C{--wsrep-recover} step that a node needs before it restarts after C{kill -9}.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

from penbal.testing._galera_config import (
    APP_DATABASE,
    APP_USER,
    CHECK_USER,
    LOOPBACK,
    NodeLayout,
    busy_ports,
    check_socket_paths,
    check_traversable,
    render_my_cnf,
    require_galera,
)
from penbal.testing._galera_nodes import MARIADBD, GaleraNodes
from penbal.testing._galera_process import parse_recovered_position, tail


def remaining(deadline: float, floor: float = 1.0) -> float:
    """Seconds left before C{deadline}, at least C{floor}."""
    return max(floor, deadline - time.monotonic())


def prepare_directories(basedir: Path, layouts: list[NodeLayout], name: str) -> None:
    """
    Create C{basedir} and one fresh directory per node with its my.cnf, all
    owned by user C{mysql}.  Refuse a directory that already holds a cluster
    and ports that are taken.
    """
    basedir.mkdir(parents=True, exist_ok=True)
    check_traversable(basedir)
    check_socket_paths(layouts)
    for node in layouts:
        if node.directory.exists():
            raise FileExistsError(
                f"{node.directory} already exists: start needs a fresh base"
                " directory (stop the old cluster and remove it)"
            )
    busy = busy_ports(layouts)
    if busy:
        raise OSError(f"ports already in use on {LOOPBACK}: {busy}")
    mysql = pwd.getpwnam("mysql")
    os.chown(basedir, mysql.pw_uid, mysql.pw_gid)
    os.chmod(basedir, 0o755)
    for node in layouts:
        node.directory.mkdir(mode=0o750)
        node.tmpdir.mkdir(mode=0o750)
        node.config_file.write_text(render_my_cnf(node, layouts, name))
        for path in (node.directory, node.tmpdir, node.config_file):
            os.chown(path, mysql.pw_uid, mysql.pw_gid)


def install_databases(layouts: list[NodeLayout], deadline: float) -> None:
    """
    Run C{mariadb-install-db} for every node at once, root logging in only
    through the unix socket; wait for all of them before the deadline.
    """
    running: list[tuple[NodeLayout, subprocess.Popen[bytes]]] = []
    try:
        for node in layouts:
            with open(node.directory / "install-db.log", "wb") as log:
                running.append(
                    (
                        node,
                        subprocess.Popen(
                            [
                                "mariadb-install-db",
                                f"--defaults-file={node.config_file}",
                                "--auth-root-authentication-method=socket",
                                "--skip-test-db",
                            ],
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        ),
                    )
                )
        for node, popen in running:
            code = popen.wait(timeout=remaining(deadline))
            if code != 0:
                raise RuntimeError(
                    f"mariadb-install-db failed for node {node.index}; end of"
                    f" {node.error_log}:\n{tail(node.error_log, 5)}"
                )
    finally:
        for _, popen in running:
            if popen.poll() is None:
                popen.kill()
                popen.wait(timeout=10)


def setup_statements(check_password: str, app_password: str) -> str:
    """
    SQL creating the health-check user (USAGE only), the application user
    (everything on C{sbtest}) and the C{sbtest} database.
    """
    statements = [f"CREATE DATABASE IF NOT EXISTS {APP_DATABASE}"]
    for host in (LOOPBACK, "localhost"):
        statements += [
            f"CREATE USER '{CHECK_USER}'@'{host}' IDENTIFIED BY '{check_password}'",
            f"GRANT USAGE ON *.* TO '{CHECK_USER}'@'{host}'",
            f"CREATE USER '{APP_USER}'@'{host}' IDENTIFIED BY '{app_password}'",
            f"GRANT ALL PRIVILEGES ON {APP_DATABASE}.* TO '{APP_USER}'@'{host}'",
        ]
    return "; ".join(statements)


def start_cluster(cluster: GaleraNodes, layouts: list[NodeLayout], deadline: float) -> None:
    """
    Bring C{cluster} up: directories, data directories, node 1 bootstrapped
    with C{--wsrep-new-cluster}, users, then each other node in turn.
    """
    require_galera()
    prepare_directories(cluster.basedir, layouts, cluster.name)
    install_databases(layouts, deadline)
    cluster.launch(1, "--wsrep-new-cluster")
    cluster.wait_synced(1, timeout=remaining(deadline), cluster_size=1)
    cluster.sql(1, setup_statements(cluster.check_password, cluster.app_password))
    for node in layouts[1:]:
        cluster.launch(node.index)
        cluster.wait_synced(node.index, timeout=remaining(deadline), cluster_size=node.index)


def recover_position(node: NodeLayout, timeout: float) -> str:
    """
    Run C{mariadbd --wsrep-recover} for C{node} (stopped) and return the
    C{UUID:SEQNO} it recovered from InnoDB.
    """
    node.recover_log.unlink(missing_ok=True)
    try:
        subprocess.run(
            [
                MARIADBD,
                f"--defaults-file={node.config_file}",
                "--wsrep-recover",
                f"--log-error={node.recover_log}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise TimeoutError(f"--wsrep-recover of node {node.index} did not finish") from e
    try:
        return parse_recovered_position(node.recover_log.read_text(errors="replace"))
    except (OSError, ValueError) as e:
        raise RuntimeError(
            f"--wsrep-recover of node {node.index} found no position:\n" + tail(node.recover_log)
        ) from e


def safe_to_bootstrap(node: NodeLayout) -> bool:
    """
    True if C{node}'s C{grastate.dat} says C{safe_to_bootstrap: 1}: it was
    the last node of its cluster to stop cleanly.
    """
    try:
        text = (node.datadir / "grastate.dat").read_text(errors="replace")
    except OSError:
        return False
    return any(
        line.split(":", 1)[1].strip() == "1"
        for line in text.splitlines()
        if line.startswith("safe_to_bootstrap:")
    )
