# -*- test-case-name: tests.bench.test_harness -*-
"""
The relays under test and how to start each one in front of one backend.

A relay is described by a command template; ``{listen_port}``,
``{backend_port}``, ``{listen}`` (``127.0.0.1:PORT``), ``{backend}``
(``127.0.0.1:PORT``), ``{backends}`` (every backend, one argument each), ``{control}``
(``127.0.0.1:PORT``, a free port for a control listener; ``{control_port}`` its number) and
``{max_conns}`` are filled in per measurement. ``{backend}`` and ``{backend_port}`` are the
first backend; only the sysbench row has more than one. ``direct`` has no relay process: the
load goes straight to the (first) backend.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from relaybench.procs import LOOPBACK, BenchError, Proc, free_port

REPO = Path(__file__).resolve().parents[2]
TWIST = REPO / ".venv" / "bin" / "twist"

PENBAL_CMD = f"{TWIST} penbal -x {{max_conns}} {{listen}} {{backends}}"
# The same, round-robin (Pen's -r), for the rows with several backends.
PENBAL_RR_CMD = f"{TWIST} penbal -r -x {{max_conns}} {{listen}} {{backends}}"
# The command issue 15 sets its goals for: round-robin, a control port and TCP health checks
# (how operators run penbal), -x 10000 as written there.
PRODUCTION_CMD = (
    f"{TWIST} penbal -r -x 10000 -C {{control}} --check tcp {{listen}} {{backends}}"
)
PORTFORWARD_CMD = (
    f"{TWIST} portforward --port tcp:{{listen_port}}:interface={LOOPBACK}"
    f" --host {LOOPBACK} --dest_port {{backend_port}}"
)
# The featureless pure-Python relay (relaybench/floor.py): what the interpreter alone costs.
FLOOR_CMD = (
    f"env PYTHONPATH={REPO / 'bench'} {REPO / '.venv' / 'bin' / 'python'} -m relaybench.floor"
    " {listen_port} {backend_port}"
)
# The floor making penbal's system calls (relaybench/floorcalls.py): one object per connection.
FLOOR_CALLS_CMD = (
    f"env PYTHONPATH={REPO / 'bench'} {REPO / '.venv' / 'bin' / 'python'} -m relaybench.floorcalls"
    " {listen_port} {backend_port}"
)
# The floor with the kernel relaying (relaybench/sockmap.py): what a hand-off to a BPF
# sockmap would reach (round-robin over every backend).
FLOOR_SOCKMAP_CMD = (
    f"env PYTHONPATH={REPO / 'bench'} {REPO / '.venv' / 'bin' / 'python'} -m relaybench.sockmap"
    " {listen_port} {backends}"
)
PEN_CMD = "pen -f -r -x {max_conns} {listen} {backends}"
# The workers row: round-robin (the kernel then spreads one client address over the workers)
# and warnings only (Pen runs without -l: no line per connection either).
PENBAL_WORKERS_CMD = (
    f"{TWIST} --log-level warn penbal -r --workers {{workers}} -x {{max_conns}} {{listen}}"
    " {backends}"
)
HAPROXY_CMD = "haproxy -db -f {config}"

HAPROXY_CONFIG = """\
global
    nbthread 1
    maxconn {max_conns}

defaults
    mode tcp
    maxconn {max_conns}
    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend bench
    bind {listen}
    default_backend servers

backend servers
{servers}
"""

# Short names accepted by --penbal-cmd and --extra-relay.
ALIASES = {"penbal": PENBAL_CMD, "production": PRODUCTION_CMD, "portforward": PORTFORWARD_CMD,
           "floor": FLOOR_CMD, "floor-calls": FLOOR_CALLS_CMD, "floor-sockmap": FLOOR_SOCKMAP_CMD}


@dataclass(frozen=True)
class RelaySpec:
    """A named relay: ``template`` is None for ``direct``."""

    name: str
    template: str | None
    tool: str | None = None

    def describe(self) -> str:
        return self.template if self.template is not None else "(no relay)"


@dataclass
class Relay:
    """A started relay (or ``direct``): where the load must connect."""

    spec: RelaySpec
    port: int
    proc: Proc | None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def expand_template(template: str) -> str:
    """Turn an alias (``penbal``, ``portforward``) into its template."""
    return ALIASES.get(template, template)


def default_specs(penbal_cmd: str) -> dict[str, RelaySpec]:
    """The four relays of the standard comparison, by name."""
    return {
        "direct": RelaySpec("direct", None),
        "penbal": RelaySpec("penbal", expand_template(penbal_cmd)),
        "pen": RelaySpec("pen", PEN_CMD, "pen"),
        "haproxy": RelaySpec("haproxy", HAPROXY_CMD, "haproxy"),
    }


def workers_specs() -> list[RelaySpec]:
    """The relays of the workers row, in the order each round runs them: Pen, then penbal
    with one worker process and with two."""
    return [
        RelaySpec("pen", PEN_CMD, "pen"),
        RelaySpec("penbal", PENBAL_WORKERS_CMD.replace("{workers}", "1")),
        RelaySpec("penbal-w2", PENBAL_WORKERS_CMD.replace("{workers}", "2")),
    ]


def parse_extra(value: str) -> RelaySpec:
    """Parse ``NAME=TEMPLATE`` (or ``NAME=portforward``) for --extra-relay."""
    name, sep, template = value.partition("=")
    if not sep or not name or not template:
        raise BenchError(f"--extra-relay wants NAME=TEMPLATE, got {value!r}")
    return RelaySpec(name, expand_template(template))


def template_fields(port: int, control_port: int, backends: Sequence[str], max_conns: int
                    ) -> dict[str, str]:
    """What a template's fields become for a relay listening on ``port`` in front of
    ``backends`` (``HOST:PORT`` each)."""
    return {
        "listen_port": str(port),
        "control_port": str(control_port),
        "control": f"{LOOPBACK}:{control_port}",
        "backend_port": backends[0].rpartition(":")[2],
        "listen": f"{LOOPBACK}:{port}",
        "backend": backends[0],
        "max_conns": str(max_conns),
        "config": "",
        "servers": "\n".join(f"    server s{n} {backend}" for n, backend in enumerate(backends, 1)),
    }


def argv(template: str, fields: dict[str, str], backends: Sequence[str]) -> list[str]:
    """Fill in ``template``; a ``{backends}`` argument becomes one argument per backend."""
    try:
        words: list[str] = []
        for token in shlex.split(template):
            if token == "{backends}":
                words += backends
            else:
                words.append(token.format(**fields, backends=" ".join(backends)))
        return words
    except (KeyError, IndexError, ValueError) as e:
        raise BenchError(f"bad relay command template {template!r}: {e}") from e


def start_relay(
    spec: RelaySpec,
    backend_ports: Sequence[int],
    *,
    core: int | None,
    logdir: Path,
    max_conns: int,
) -> Relay:
    """Start ``spec`` in front of 127.0.0.1:``backend_ports`` and wait for it.

    ``core`` None runs the relay unpinned (on every core).
    """
    if not backend_ports:
        raise BenchError("a relay needs at least one backend")
    if spec.template is None:
        return Relay(spec, backend_ports[0], None)
    port = free_port()
    control_port = free_port()
    while control_port == port:
        control_port = free_port()
    backends = [f"{LOOPBACK}:{backend}" for backend in backend_ports]
    fields = template_fields(port, control_port, backends, max_conns)
    if spec.name == "haproxy" and spec.template == HAPROXY_CMD:
        config = logdir / f"haproxy-{port}.cfg"
        config.write_text(HAPROXY_CONFIG.format(**fields))
        fields["config"] = str(config)
        _check_haproxy_config(config)
    proc = Proc(spec.name, argv(spec.template, fields, backends), core, logdir)
    relay = Relay(spec, port, proc)
    try:
        proc.wait_listening(port)
    except BaseException:
        relay.stop()
        raise
    return relay


def _check_haproxy_config(config: Path) -> None:
    done = subprocess.run(
        ["haproxy", "-c", "-q", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"haproxy rejects {config}:\n{done.stdout}{done.stderr}")
