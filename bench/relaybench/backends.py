# -*- test-case-name: tests.bench.test_harness -*-
"""
Local backends behind the relays: nginx (small answers, and the bulk file), the hold server.

All listen on 127.0.0.1 ephemeral ports and run on the load core.  The bulk row's backend is
nginx sending one large sparse file with sendfile: unlike iperf3's server, it does not mind
health checks that connect and close (``--check tcp``), and it costs the load core little.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relaybench.procs import LOOPBACK, BenchError, Proc, free_port

BODY = "hello from the penbal benchmark\\n"

NGINX_CONFIG = """\
worker_processes 1;
master_process off;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
worker_rlimit_nofile 65536;

events {{
    worker_connections 16384;
}}

http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    default_type text/plain;
    sendfile on;
    tcp_nopush on;

    server {{
        listen {listen};
        location / {{
            return 200 "{body}";
        }}
{bulk}
    }}
}}
"""

#: Where nginx serves the bulk file.
BULK_PATH = "/bulk"

BULK_LOCATION = """        location = {path} {{
            alias {file};
        }}"""

#: The bulk file's size: 1 TiB lasts over 4 minutes at 30 Gbit/s (a stream that reaches its
#: end before the load's time is up is an error).  Sparse in tmpfs, it takes no memory.
BULK_FILE_BYTES = 1 << 40

#: Where the bulk file lives: tmpfs, whose holes read as the shared zero page (no memory, no
#: disk); on a disk file system each page read would fill the page cache.
SHM = Path("/dev/shm")


@contextmanager
def bulk_file(size: int = BULK_FILE_BYTES, directory: Path = SHM) -> Iterator[Path]:
    """A sparse file of ``size`` bytes (all zeros) in a new directory under ``directory``,
    removed afterwards."""
    if not directory.is_dir():
        raise BenchError(f"the bulk row needs {directory} (tmpfs) for its sparse file")
    home = Path(tempfile.mkdtemp(prefix="relaybench-bulk-", dir=directory))
    try:
        path = home / "bulk"
        with path.open("wb") as out:
            out.truncate(size)
        yield path
    finally:
        shutil.rmtree(home, ignore_errors=True)


def nginx_config(prefix: Path, port: int, bulk: Path | None) -> str:
    """nginx's configuration: a small body for every path, and ``bulk`` at BULK_PATH."""
    location = "" if bulk is None else BULK_LOCATION.format(path=BULK_PATH, file=bulk)
    return NGINX_CONFIG.format(prefix=prefix, listen=f"{LOOPBACK}:{port}", body=BODY,
                               bulk=location)


def start_nginx(core: int, logdir: Path, bulk: Path | None = None) -> tuple[Proc, int]:
    """Start nginx (one process) answering every request with a small body, and with the
    file ``bulk`` (sent with sendfile) at BULK_PATH."""
    port = free_port()
    prefix = logdir / "nginx"
    prefix.mkdir(exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(nginx_config(prefix, port, bulk))
    proc = Proc("nginx", ["nginx", "-p", str(prefix), "-c", str(config)], core, logdir)
    _wait(proc, port)
    return proc, port


def start_hold_server(core: int, logdir: Path) -> tuple[Proc, int]:
    """Start the hold server (accepts, echoes, and keeps every connection)."""
    port = free_port()
    argv = [sys.executable, str(Path(__file__).with_name("holdserver.py")), str(port)]
    proc = Proc("holdserver", argv, core, logdir)
    _wait(proc, port)
    return proc, port


def _wait(proc: Proc, port: int) -> None:
    try:
        proc.wait_listening(port)
    except BaseException:
        proc.stop()
        raise
