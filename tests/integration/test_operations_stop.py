# -*- test-case-name: tests.integration.test_operations_stop -*-
"""
Graceful stop of a real penbal: SIGTERM stops accepting, live connections get
--shutdown-timeout seconds to finish, the rest are closed, and the exit status is 0.
"""

from __future__ import annotations

import signal
import time

from tests.integration.operations import OperationsCase, accepts, wait_for


class GracefulStopTests(OperationsCase):
    """SIGTERM with live connections."""

    def terminate(self) -> float:
        self.proc.process.send_signal(signal.SIGTERM)
        return time.monotonic()

    def test_live_connections_finish(self) -> None:
        """New connections are refused at once; live ones keep working until they end; exit 0."""
        port = self.start(self.backends("b0"), "--shutdown-timeout", "30")
        clients = [self.client() for _ in range(3)]
        self.terminate()
        wait_for(lambda: not accepts("127.0.0.1", port), 10, "penbal to stop accepting")
        time.sleep(0.5)  # the point of the test: live connections outlive the signal
        for client in clients:
            self.assertEqual(client.echo(b"x" * 100_000), b"x" * 100_000)
        self.assertIsNone(self.proc.process.poll())
        started = time.monotonic()
        for client in clients:
            client.close()
        self.assertEqual(self.proc.process.wait(20), 0)
        self.assertLess(time.monotonic() - started, 10)

    def test_timeout_closes_the_rest(self) -> None:
        """After --shutdown-timeout the remaining connections are closed and penbal exits 0."""
        self.start(self.backends("b0"), "--shutdown-timeout", "1")
        client = self.client()
        started = self.terminate()
        self.assertEqual(self.proc.process.wait(20), 0)
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 10)
        client.sock.settimeout(10)
        self.assertEqual(client.sock.recv(10), b"")

    def test_exit_command(self) -> None:
        """penbal-ctl ... exit stops penbal gracefully (exit status 0)."""
        self.start(self.backends("b0"))
        self.assertIn("stopping", self.ctl("exit"))
        self.assertEqual(self.proc.process.wait(20), 0)

    def test_usr1_logs_a_summary(self) -> None:
        """SIGUSR1 logs a status summary (Pen's behaviour)."""
        self.start(self.backends("b0", "b1"))
        self.client()
        self.proc.process.send_signal(signal.SIGUSR1)

        def summary() -> list[dict[str, object]]:
            return [e for e in self.log_events() if e.get("penbal_event") == "status"]

        wait_for(lambda: len(summary()) == 3, 10, "the status summary")
        lines = [str(e["line"]) for e in summary()]
        self.assertRegex(lines[0], r"^penbal \S+ pid \d+, up \d+s, policy sticky, \d+ connections "
                                   r"\(\d+ accepted\), 2 servers$")
        self.assertTrue(lines[1].startswith("server 0 127.0.0.1:"))
        self.assertIsNone(self.proc.process.poll())
