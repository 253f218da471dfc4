# -*- test-case-name: tests.bench.test_harness -*-
"""
``bench/profile``: where one relay's time goes under load, pinned as ``bench/run`` pins it.

nginx (on the load core) behind the relay (on the relay core, the production command by
default), ``wrk -c50`` with a new connection per request (or kept-alive) for N seconds, and
either ``py-spy record -f raw`` sampling the relay (own-time and inclusive-time top lists,
``stacks.py``) or, with ``--calls``, the relay run under cProfile switched on for the load
only (Python calls per request, ``calls.py`` and ``cprofiled.py``).  Every process is
started here and stopped by its pid.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from relaybench import backends, calls, loads, stacks
from relaybench.procs import (
    BenchError,
    CpuMeter,
    Proc,
    pin_self,
    raise_nofile,
    require_tools,
)
from relaybench.relays import ALIASES, REPO, Relay, RelaySpec, expand_template, start_relay

PY_SPY = REPO / ".venv" / "bin" / "py-spy"
CPROFILED = Path(__file__).with_name("cprofiled.py")
#: How long py-spy may take to attach, and to write its output once told to stop.
SPY_ATTACH = 15.0
SPY_FINISH = 30.0
#: How long the relay may take to write its cProfile statistics.
STATS_WRITE = 30.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/profile",
        description=(
            "Profile one relay under wrk load to nginx, the relay on --relay-core and"
            " everything else on --load-core: py-spy samples (own and inclusive time top"
            " lists) or, with --calls, cProfile's Python calls per request."
        ),
        epilog=(
            "The relay template takes the fields of bench/run ({listen}, {backends},"
            f" {{control}}, {{max_conns}}...) and its aliases ({', '.join(ALIASES)})."
        ),
    )
    parser.add_argument(
        "--relay", default="production", metavar="TEMPLATE",
        help=f"the relay's command (default: production, {ALIASES['production']})",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=int, default=10, metavar="SEC",
        help="seconds of load (default: 10)",
    )  # fmt: skip
    parser.add_argument(
        "--keepalive", action="store_true",
        help="kept-alive connections (default: a new connection per request)",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=int, default=loads.WRK_CONNECTIONS, metavar="N",
        help=f"wrk's connections (default: {loads.WRK_CONNECTIONS})",
    )  # fmt: skip
    parser.add_argument(
        "--calls", action="store_true",
        help="count Python calls per request under cProfile instead of sampling",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=int, default=300, metavar="HZ",
        help="py-spy samples per second (default: 300)",
    )  # fmt: skip
    parser.add_argument(
        "--nonblocking", action="store_true",
        help="let py-spy sample without pausing the relay (less overhead, less exact)",
    )  # fmt: skip
    parser.add_argument(
        "--top", type=int, default=30, metavar="N",
        help="lines per top list (default: 30)",
    )  # fmt: skip
    parser.add_argument(
        "--max-conns", type=int, default=8000, metavar="N",
        help="the template's {max_conns} (default: 8000)",
    )  # fmt: skip
    parser.add_argument("--relay-core", type=int, default=1, metavar="CPU")
    parser.add_argument("--load-core", type=int, default=0, metavar="CPU")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="keep the raw profile and the logs here (default: a removed temp dir)",
    )  # fmt: skip
    parser.add_argument(
        "--summarize", type=Path, default=None, metavar="RAW",
        help="only print the top lists of an earlier py-spy raw file",
    )  # fmt: skip
    return parser.parse_args(argv)


def interpreter(script: str) -> str:
    """The Python that runs ``script`` (a console script such as ``twist``): its ``#!``
    line's interpreter."""
    path = shutil.which(script) or script
    try:
        with open(path, "rb") as source:
            first = source.readline().decode(errors="replace").strip()
    except OSError as e:
        raise BenchError(f"--calls: cannot read the relay's script {script}: {e}") from e
    words = first[2:].split() if first.startswith("#!") else []
    if words and Path(words[0]).name == "env" and len(words) > 1:
        words = [shutil.which(words[1]) or words[1]]
    if not words or "python" not in Path(words[0]).name:
        raise BenchError(
            f"--calls runs the relay under cProfile: its command must start with a Python"
            f" script (like twist), not {script}"
        )
    return words[0]


def profiled_template(template: str, output: Path) -> str:
    """``template`` run by its own Python through ``cprofiled.py``, writing ``output``."""
    words = shlex.split(template)
    if not words:
        raise BenchError("empty relay command")
    wrapper = [interpreter(words[0]), str(CPROFILED), str(output)]
    return f"{shlex.join(wrapper)} {template}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.summarize is not None:
            print(stacks.summary(stacks.parse_raw(_read(args.summarize)), args.top))
            return 0
        with tempfile.TemporaryDirectory(prefix="relaybench-profile-") as tmp:
            out = Path(tmp) if args.out is None else args.out.resolve()
            out.mkdir(parents=True, exist_ok=True)
            _run(args, out)
            if args.out is not None:
                print(f"\nkept in {out}")
        return 0
    except (BenchError, ValueError) as e:
        print(f"bench/profile: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench/profile: interrupted", file=sys.stderr)
        return 130


def _read(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError as e:
        raise BenchError(f"cannot read {path}: {e}") from e


def _run(args: argparse.Namespace, out: Path) -> None:
    spy = str(PY_SPY) if PY_SPY.exists() else "py-spy"
    require_tools(["wrk", "nginx"] + ([] if args.calls else [spy]))
    pin_self(args.load_core)
    raise_nofile()
    template = expand_template(args.relay)
    stats = out / "relay.pstats"
    if args.calls:
        stats.unlink(missing_ok=True)
        template = profiled_template(template, stats)
    nginx, nginx_port = backends.start_nginx(args.load_core, out)
    try:
        relay = start_relay(RelaySpec("relay", template), [nginx_port], core=args.relay_core,
                            logdir=out, max_conns=args.max_conns)
        try:
            if args.calls:
                _calls(args, relay, stats)
            else:
                _sample(args, relay, spy, out / "py-spy.raw")
        finally:
            relay.stop()
    finally:
        nginx.stop()


def _header(args: argparse.Namespace, result: loads.WrkResult, meter: CpuMeter) -> str:
    load = "kept-alive" if args.keepalive else "a new connection per request"
    times = meter.times
    n = max(result.requests, 1)
    return (
        f"relay: {expand_template(args.relay)}\n"
        f"load: wrk -t1 -c{args.connections} for {args.duration} s, {load}:"
        f" {result.requests_per_s:,.0f} req/s ({result.requests:,} requests,"
        f" socket errors {sum(result.socket_errors.values())})\n"
        f"relay CPU per request: {1e6 * times.user / n:.1f} us user +"
        f" {1e6 * times.system / n:.1f} us system (slowed by the profiler)"
    )


def _load(args: argparse.Namespace, relay: Relay) -> tuple[loads.WrkResult, CpuMeter]:
    meter = CpuMeter(relay.proc)
    meter.start()
    result = loads.wrk(relay.port, args.duration, close=not args.keepalive,
                       connections=args.connections)
    meter.stop()
    return result, meter


def _sample(args: argparse.Namespace, relay: Relay, spy: str, raw: Path) -> None:
    assert relay.proc is not None
    argv = [spy, "record", "-p", str(relay.proc.pid), "-r", str(args.rate), "-f", "raw",
            "--function", "-o", str(raw), "-d", str(args.duration + int(SPY_FINISH))]
    if args.nonblocking:
        argv.append("--nonblocking")
    sampler = Proc("py-spy", argv, args.load_core, raw.parent)
    try:
        _wait_for(sampler, "Sampling process", SPY_ATTACH)
        result, meter = _load(args, relay)
        sampler.send(signal.SIGINT)  # py-spy writes its output and exits
        if not sampler.wait(SPY_FINISH):
            raise BenchError(f"py-spy did not finish:\n{sampler.log_tail()}")
    finally:
        sampler.stop()
    if not raw.exists():
        raise BenchError(f"py-spy wrote no {raw}:\n{sampler.log_tail()}")
    print(_header(args, result, meter))
    print(f"py-spy: {args.rate} samples/s{', non-blocking' if args.nonblocking else ''}")
    print()
    print(stacks.summary(stacks.parse_raw(_read(raw)), args.top))


def _calls(args: argparse.Namespace, relay: Relay, stats: Path) -> None:
    assert relay.proc is not None
    relay.proc.send(signal.SIGUSR2)  # cProfile on
    result, meter = _load(args, relay)
    relay.proc.send(signal.SIGUSR2)  # off, and written
    deadline = time.monotonic() + STATS_WRITE
    while not stats.exists():
        if time.monotonic() > deadline or not relay.proc.alive():
            raise BenchError(f"the relay wrote no {stats}:\n{relay.proc.log_tail()}")
        time.sleep(0.1)
    print(_header(args, result, meter))
    print()
    print(calls.summary(calls.load(stats), result.requests, args.top))


def _wait_for(proc: Proc, text: str, deadline: float) -> None:
    """Wait until ``text`` appears in the process's output while it runs."""
    end = time.monotonic() + deadline
    while text not in proc.log_tail(50):
        if not proc.alive() or time.monotonic() > end:
            raise BenchError(f"{proc.name} did not start sampling:\n{proc.log_tail()}")
        time.sleep(0.05)


if __name__ == "__main__":
    raise SystemExit(main())
