"""
Local backends behind the relays: nginx, an iperf3 server, the hold server.

All listen on 127.0.0.1 ephemeral ports and run on the load core.
"""

from __future__ import annotations

import sys
from pathlib import Path

from relaybench.procs import LOOPBACK, Proc, free_port

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

    server {{
        listen {listen};
        location / {{
            return 200 "{body}";
        }}
    }}
}}
"""


def start_nginx(core: int, logdir: Path) -> tuple[Proc, int]:
    """Start nginx (one process) answering every request with a small body."""
    port = free_port()
    prefix = logdir / "nginx"
    prefix.mkdir(exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(prefix=prefix, listen=f"{LOOPBACK}:{port}", body=BODY))
    proc = Proc("nginx", ["nginx", "-p", str(prefix), "-c", str(config)], core, logdir)
    _wait(proc, port)
    return proc, port


def start_iperf3_server(core: int, logdir: Path) -> tuple[Proc, int]:
    """Start ``iperf3 -s`` for a single test on 127.0.0.1."""
    port = free_port()
    argv = ["iperf3", "-s", "-1", "-B", LOOPBACK, "-p", str(port)]
    proc = Proc("iperf3-server", argv, core, logdir)
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
