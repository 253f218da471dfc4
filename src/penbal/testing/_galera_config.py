# -*- test-case-name: tests.testing.test_galera_cluster -*-
"""
Layout of a loopback Galera test cluster: ports, paths and each node's my.cnf.

Node ``i`` (1-based) listens for SQL on ``base_port + i``, for group
communication on ``gcomm_base + 10 * i``, for IST on the next port and for SST
(rsync) on the one after.  Everything binds 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"
CHECK_USER = "penbal_check"
APP_USER = "penbal_app"
APP_DATABASE = "sbtest"

# Fast failure detection for tests: keepalive must stay below a third of the
# suspect timeout or the node refuses to start.
FAST_FAILURE_DETECTION = (
    "evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;"
    "evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S"
)

# The kernel's limit on sun_path, minus the terminating NUL.
_MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class NodeLayout:
    """
    Where one node lives and which loopback ports it uses.
    """

    index: int
    directory: Path
    sql_port: int
    gcomm_port: int

    @property
    def ist_port(self) -> int:
        """Incremental state transfer port (gcomm + 1)."""
        return self.gcomm_port + 1

    @property
    def sst_port(self) -> int:
        """rsync state snapshot transfer port (gcomm + 2)."""
        return self.gcomm_port + 2

    @property
    def name(self) -> str:
        """The node's C{wsrep_node_name}."""
        return f"node{self.index}"

    @property
    def config_file(self) -> Path:
        return self.directory / "my.cnf"

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def tmpdir(self) -> Path:
        """
        The node's own temporary directory: nodes sharing /tmp make
        C{mariadb-install-db} fail now and then ("Unknown table
        'mysql.tmp_user_sys'").
        """
        return self.directory / "tmp"

    @property
    def socket_path(self) -> Path:
        return self.directory / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.directory / "mysqld.pid"

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    @property
    def console_log(self) -> Path:
        """Where the server's own stdout and stderr go."""
        return self.directory / "console.log"

    @property
    def recover_log(self) -> Path:
        """Error log of the last C{--wsrep-recover} run."""
        return self.directory / "recover.log"

    def ports(self) -> tuple[int, ...]:
        """Every TCP port this node listens on."""
        return (self.sql_port, self.gcomm_port, self.ist_port, self.sst_port)


def node_layouts(basedir: Path, nodes: int, base_port: int, gcomm_base: int) -> list[NodeLayout]:
    """
    Compute the layout of nodes 1..C{nodes} under C{basedir}.
    """
    if nodes < 1:
        raise ValueError(f"a cluster needs at least one node, not {nodes}")
    return [
        NodeLayout(
            index=i,
            directory=basedir / f"node{i}",
            sql_port=base_port + i,
            gcomm_port=gcomm_base + 10 * i,
        )
        for i in range(1, nodes + 1)
    ]


def cluster_address(layouts: list[NodeLayout]) -> str:
    """The C{gcomm://} address listing every node."""
    return "gcomm://" + ",".join(f"{LOOPBACK}:{n.gcomm_port}" for n in layouts)


def render_my_cnf(node: NodeLayout, layouts: list[NodeLayout], name: str) -> str:
    """
    Render the complete option file for C{node}; it is always passed with
    C{--defaults-file} first so that /etc/mysql is never read.
    """
    provider_options = ";".join(
        [
            f"gmcast.listen_addr=tcp://{LOOPBACK}:{node.gcomm_port}",
            f"ist.recv_addr={LOOPBACK}:{node.ist_port}",
            "gcache.size=64M",
            FAST_FAILURE_DETECTION,
        ]
    )
    settings = [
        ("user", "mysql"),
        ("datadir", str(node.datadir)),
        ("tmpdir", str(node.tmpdir)),
        ("socket", str(node.socket_path)),
        ("pid_file", str(node.pid_file)),
        ("log_error", str(node.error_log)),
        ("port", str(node.sql_port)),
        ("bind_address", LOOPBACK),
        ("skip_name_resolve", "ON"),
        ("performance_schema", "OFF"),
        ("innodb_buffer_pool_size", "128M"),
        ("innodb_log_file_size", "64M"),
        ("innodb_flush_log_at_trx_commit", "2"),
        ("binlog_format", "ROW"),
        ("default_storage_engine", "InnoDB"),
        ("innodb_autoinc_lock_mode", "2"),
        ("wsrep_on", "ON"),
        ("wsrep_provider", GALERA_PROVIDER),
        ("wsrep_cluster_name", name),
        ("wsrep_cluster_address", cluster_address(layouts)),
        ("wsrep_node_name", node.name),
        ("wsrep_node_address", f"{LOOPBACK}:{node.gcomm_port}"),
        ("wsrep_node_incoming_address", f"{LOOPBACK}:{node.sql_port}"),
        ("wsrep_sst_method", "rsync"),
        ("wsrep_sst_receive_address", f"{LOOPBACK}:{node.sst_port}"),
        ("wsrep_provider_options", f'"{provider_options}"'),
    ]
    lines = ["[mysqld]"] + [f"{key} = {value}" for key, value in settings]
    return "\n".join(lines) + "\n"


def check_socket_paths(layouts: list[NodeLayout]) -> None:
    """
    Refuse a base directory so deep that a node's unix socket path would not
    fit in C{sun_path}.
    """
    for node in layouts:
        path = str(node.socket_path)
        if len(path.encode()) > _MAX_SOCKET_PATH:
            raise ValueError(
                f"socket path {path!r} is longer than {_MAX_SOCKET_PATH} bytes:"
                " use a shorter base directory (e.g. under /tmp)"
            )


def check_traversable(basedir: Path) -> None:
    """
    Make sure user C{mysql} can reach C{basedir}: every ancestor must be
    searchable by others (C{/root} is not; C{/tmp} is).
    """
    for ancestor in basedir.resolve().parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise ValueError(
                f"{ancestor} is not traversable by user mysql, so {basedir}"
                " cannot hold a cluster: use a directory under /tmp"
            )


def busy_ports(layouts: list[NodeLayout]) -> list[int]:
    """
    Return the ports of C{layouts} that something already listens on at
    127.0.0.1 (a leftover cluster, another test run).
    """
    busy = []
    for node in layouts:
        for port in node.ports():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((LOOPBACK, port))
                except OSError:
                    busy.append(port)
    return busy


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """
    Write C{text} to C{path}, created with C{mode} from the start so the
    content is never readable by others, even for a moment.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def require_galera(
    search_path: str = "/usr/sbin:/usr/bin:/sbin:/bin", provider: str = GALERA_PROVIDER
) -> None:
    """
    Raise L{RuntimeError} with a clear message unless MariaDB and Galera are
    installed (C{scripts/install-galera} installs them).
    """
    missing = [
        tool
        for tool in ("mariadbd", "mariadb", "mariadb-install-db", "rsync")
        if shutil.which(tool, path=search_path) is None
    ]
    if not Path(provider).exists():
        missing.append(provider)
    if missing:
        raise RuntimeError(
            "MariaDB Galera is not installed (missing: "
            + ", ".join(missing)
            + "); run scripts/install-galera as root"
        )
