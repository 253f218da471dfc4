# -*- test-case-name: tests.bench.test_harness -*-
"""
Tests of the harness's pieces that need no load tool: relay templates, CPU time per request
in the table, ratios paired by round, the bulk file and stream, and how bench/profile wraps a
relay for cProfile.
"""

import os
import socket
import threading
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from relaybench import backends, loads, relays, sysbench
from relaybench.procs import CLOCK_TICKS, BenchError, CpuTimes, parse_stat_times
from relaybench.profiling import CPROFILED, interpreter, profiled_template
from relaybench.report import Cell, median_cell, paired_ratio, per_request, table


class TemplateTests(SynchronousTestCase):
    """Filling in a relay's command."""

    def _argv(self, template: str) -> list[str]:
        backends = ["127.0.0.1:3381", "127.0.0.1:3382"]
        fields = relays.template_fields(4000, 4001, backends, 8000)
        return relays.argv(relays.expand_template(template), fields, backends)

    def test_production_command(self) -> None:
        """The 'production' alias is issue 15's command: round-robin, -x 10000, a control
        port on 127.0.0.1, TCP checks, one argument per backend."""
        words = self._argv("production")
        self.assertEqual(words[1:], ["penbal", "-r", "-x", "10000", "-C", "127.0.0.1:4001",
                                     "--check", "tcp", "127.0.0.1:4000", "127.0.0.1:3381",
                                     "127.0.0.1:3382"])

    def test_control_port_field(self) -> None:
        """{control_port} is the control listener's number alone."""
        self.assertEqual(self._argv("x -C unix:/tmp/c-{control_port}.sock {listen}"),
                         ["x", "-C", "unix:/tmp/c-4001.sock", "127.0.0.1:4000"])

    def test_first_backend_port(self) -> None:
        """{backend} and {backend_port} are the first backend."""
        self.assertEqual(self._argv("x {backend} {backend_port}"), ["x", "127.0.0.1:3381", "3381"])

    def test_unknown_field(self) -> None:
        """A field the harness does not know fails clearly."""
        with self.assertRaises(BenchError):
            self._argv("x {nope}")

    def test_sysbench_keeps_the_production_command(self) -> None:
        """The sysbench row runs a given template as it is (it has -r); only penbal's default
        command is made round-robin, as Pen's has -r."""
        production = relays.RelaySpec("penbal", relays.PRODUCTION_CMD)
        self.assertEqual(sysbench.row_spec(production), production)
        default = sysbench.row_spec(relays.RelaySpec("penbal", relays.PENBAL_CMD))
        self.assertEqual(default.template, relays.PENBAL_RR_CMD)
        self.assertIn(" -r ", relays.PEN_CMD)


class CpuPerRequestTests(SynchronousTestCase):
    """The relay's user and system time, in /proc and in the table."""

    def test_parse_stat(self) -> None:
        """utime and stime are fields 14 and 15, counted after the command's closing
        parenthesis (the command may hold spaces and parentheses)."""
        stat = "42 (tw (x) y) S 1 42 42 0 -1 4194560 10 0 0 0 250 75 0 0 20 0 1 0 9 0 0"
        self.assertEqual(parse_stat_times(stat), CpuTimes(250 / CLOCK_TICKS, 75 / CLOCK_TICKS))

    def test_own_process(self) -> None:
        """Read for a real process, the times are non-negative and add up to the total."""
        text = Path(f"/proc/{os.getpid()}/stat").read_text()
        times = parse_stat_times(text)
        self.assertGreaterEqual(min(times), 0.0)
        self.assertEqual(times.total, times.user + times.system)
        self.assertEqual(times.since(CpuTimes(times.user, 0.0)), CpuTimes(0.0, times.system))

    def test_column(self) -> None:
        """The table shows µs per request as user+system where they were measured."""
        pen = Cell("newconn", "pen", 1000.0, 90.0,
                   detail={"relay_user_us_per_request": 8.04, "relay_sys_us_per_request": 81.5})
        direct = Cell("newconn", "direct", 2000.0)
        self.assertEqual(per_request(pen), "8.0+81.5")
        self.assertEqual(per_request(direct), "-")
        text = table([direct, pen], ["direct", "pen"], "1")
        self.assertIn("us/req usr+sys", text)
        self.assertIn("8.0+81.5", text)


def _rounds(relay: str, values: list[float], cpu: list[float],
            failed: tuple[int, ...] = ()) -> list[Cell]:
    """One cell per round for ``relay`` in the kept-alive row."""
    return [
        Cell("keepalive", relay, value, 90.0,
             error="wrk failed" if n in failed else None,
             detail={"relay_user_us_per_request": 0.0, "relay_sys_us_per_request": us})
        for n, (value, us) in enumerate(zip(values, cpu, strict=True))
    ]


class PairedRatioTests(SynchronousTestCase):
    """Ratios to Pen taken round by round, then the median (what a drifting machine moves
    for both relays of a round alike)."""

    def test_drift_cancels(self) -> None:
        """The machine slows to half from round 3 on, starting between Pen's turn and
        penbal's: the medians are Pen's fast 100 and penbal's slow 45 (0.45), while the
        paired ratio is 0.9, the ratio in every round but that one."""
        pen = median_cell(_rounds("pen", [100.0, 100.0, 100.0, 50.0, 50.0], [10.0] * 5))
        penbal = median_cell(_rounds("penbal", [90.0, 90.0, 45.0, 45.0, 45.0],
                                     [12.0, 12.0, 24.0, 24.0, 24.0]))
        cells = [pen, penbal]
        self.assertEqual((pen.value, penbal.value), (100.0, 45.0))
        self.assertAlmostEqual(paired_ratio(cells, penbal, "pen") or 0.0, 0.9)
        cpu = paired_ratio(cells, penbal, "pen", "rounds_us_per_request")
        self.assertAlmostEqual(cpu or 0.0, 2.4)

    def test_failed_rounds_left_out(self) -> None:
        """A round where either relay failed gives no pair; an even count of pairs gives the
        mean of the middle two."""
        pen = median_cell(_rounds("pen", [100.0] * 6, [10.0] * 6, failed=(0,)))
        penbal = median_cell(_rounds("penbal", [10.0, 80.0, 90.0, 100.0, 110.0, 200.0],
                                     [10.0] * 6, failed=(5,)))
        self.assertEqual(penbal.detail["rounds"], [10.0, 80.0, 90.0, 100.0, 110.0, None])
        # Rounds 1 to 4 pair: 0.8, 0.9, 1.0, 1.1.
        self.assertAlmostEqual(paired_ratio([pen, penbal], penbal, "pen") or 0.0, 0.95)

    def test_single_round_and_missing_relay(self) -> None:
        """One round: the paired ratio is the plain ratio. No Pen in the row: none."""
        pen = median_cell(_rounds("pen", [100.0], [10.0]))
        penbal = median_cell(_rounds("penbal", [80.0], [15.0]))
        self.assertAlmostEqual(paired_ratio([pen, penbal], penbal, "pen") or 0.0, 0.8)
        self.assertAlmostEqual(
            paired_ratio([pen, penbal], penbal, "pen", "rounds_us_per_request") or 0.0, 1.5)
        self.assertIsNone(paired_ratio([penbal], penbal, "pen"))

    def test_in_the_table(self) -> None:
        """The table has both paired columns, for every relay of the row."""
        pen = median_cell(_rounds("pen", [100.0, 50.0, 100.0], [10.0, 20.0, 10.0]))
        penbal = median_cell(_rounds("penbal", [95.0, 45.0, 90.0], [11.0, 22.0, 12.0]))
        text = table([pen, penbal], ["pen", "penbal"], "1")
        self.assertIn("CPU/req paired", text)
        line = next(line for line in text.splitlines() if " penbal " in f" {line} ")
        self.assertIn("0.90x", line)  # rounds: 0.95, 0.90, 0.90
        self.assertIn("1.10x", line)  # CPU: 1.1, 1.1, 1.2


class BulkTests(SynchronousTestCase):
    """The bulk row's file, nginx's location for it and the stream client."""

    def test_sparse_file(self) -> None:
        """The file has the size asked for, takes (almost) no blocks, and goes away."""
        home = Path(self.mktemp())
        home.mkdir()
        with backends.bulk_file(1 << 30, home) as path:
            self.assertEqual(path.stat().st_size, 1 << 30)
            self.assertLess(path.stat().st_blocks * 512, 1 << 20)
        self.assertFalse(path.exists())
        self.assertEqual(list(home.iterdir()), [])

    def test_missing_directory(self) -> None:
        """Without the directory the row fails clearly."""
        with self.assertRaises(BenchError), backends.bulk_file(1, Path(self.mktemp())):
            pass

    def test_nginx_location(self) -> None:
        """nginx serves the file at BULK_PATH with sendfile; without one, no location."""
        config = backends.nginx_config(Path("/p"), 8080, Path("/dev/shm/x/bulk"))
        self.assertIn(f"location = {backends.BULK_PATH} {{", config)
        self.assertIn("alias /dev/shm/x/bulk;", config)
        self.assertIn("sendfile on;", config)
        self.assertNotIn("alias", backends.nginx_config(Path("/p"), 8080, None))

    def _serve(self, answer: bytes, body: int) -> int:
        """A one-connection server on 127.0.0.1: reads the request, sends ``answer`` and
        ``body`` zero bytes (0: until the client goes), then closes."""
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(10)
        port: int = listener.getsockname()[1]

        def serve() -> None:
            with listener, listener.accept()[0] as conn:
                conn.recv(4096)
                conn.sendall(answer)
                chunk = bytes(1 << 16)
                sent = 0
                try:
                    while body == 0 or sent < body:
                        conn.sendall(chunk)
                        sent += len(chunk)
                except OSError:
                    pass  # the client closed

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        return port

    def test_stream(self) -> None:
        """The client reads for the given time and counts every byte."""
        port = self._serve(b"HTTP/1.1 200 OK\r\n\r\n", 0)
        result = loads.stream(port, 0.2, "/bulk")
        self.assertGreaterEqual(result.seconds, 0.2)
        self.assertGreater(result.bytes, 1 << 16)
        self.assertAlmostEqual(result.gbit_per_s, 8 * result.bytes / result.seconds / 1e9)

    def test_stream_ends_early(self) -> None:
        """A stream that ends before its time is an error, not a short measurement."""
        port = self._serve(b"HTTP/1.1 200 OK\r\n\r\n", 1 << 16)
        with self.assertRaises(BenchError) as caught:
            loads.stream(port, 10.0, "/bulk")
        self.assertIn("ended after", str(caught.exception))

    def test_stream_not_found(self) -> None:
        """An answer other than 200 is an error."""
        port = self._serve(b"HTTP/1.1 404 Not Found\r\n\r\n", 1)
        with self.assertRaises(BenchError) as caught:
            loads.stream(port, 1.0, "/bulk")
        self.assertIn("404", str(caught.exception))


class ProfiledTemplateTests(SynchronousTestCase):
    """bench/profile --calls: the relay run by its own Python through cprofiled.py."""

    def _script(self, first_line: str) -> Path:
        path = Path(self.mktemp())
        path.write_text(f"{first_line}\nprint('hi')\n")
        return path

    def test_interpreter_from_shebang(self) -> None:
        """A console script's #! line names its Python."""
        self.assertEqual(interpreter(str(self._script("#!/opt/v/bin/python3.11"))),
                         "/opt/v/bin/python3.11")

    def test_not_python(self) -> None:
        """A relay that is not a Python script cannot be counted."""
        with self.assertRaises(BenchError):
            interpreter(str(self._script("#!/bin/sh")))

    def test_template(self) -> None:
        """The template runs after the wrapper, its fields left for start_relay."""
        script = self._script("#!/opt/v/bin/python")
        template = profiled_template(f"{script} penbal {{listen}} {{backends}}", Path("/o/s"))
        self.assertEqual(template, f"/opt/v/bin/python {CPROFILED} /o/s {script} penbal"
                                   " {listen} {backends}")
