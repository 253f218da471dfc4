# -*- test-case-name: tests.integration.test_operations_status -*-
"""
The HTTP status of a real penbal: /metrics read by prometheus_client's parser, /status.json,
and the human page rendered by a real headless browser (Debian's chromium), with a screenshot
kept as a test artefact: in _trial_temp/artefacts/ with the run, and in test-artefacts/ at the
root of the checkout, which survives the next run's fresh _trial_temp (and is git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from penbal.testing.process import wait_for
from tests.integration.operations import OperationsCase, free_port

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,900",
)


#: The checkout's artefacts directory: kept across runs, unlike trial's temporary directory.
KEPT_ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"


def keep_artefact(path: str) -> Path:
    """Copy C{path} into L{KEPT_ARTEFACTS} (replacing the previous run's); the copy's path."""
    KEPT_ARTEFACTS.mkdir(exist_ok=True)
    kept = KEPT_ARTEFACTS / os.path.basename(path)
    partial = kept.with_name(f".{kept.name}.partial")
    shutil.copyfile(path, partial)
    os.replace(partial, kept)
    return kept


def chromium() -> str:
    """The chromium binary; the test fails (does not skip) without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError(
            "chromium is not installed: apt-get install -y chromium "
            "(scripts/install-system-packages)"
        )
    return found


class StatusTests(OperationsCase):
    """penbal --http PORT in front of two backends, one drained, with live connections."""

    def setUp(self) -> None:
        self.http = free_port()
        self.start(self.backends("b0", "b1"), "--http", f"127.0.0.1:{self.http}",
                   "--policy", "roundrobin")
        self.clients = [self.client() for _ in range(4)]
        for client in self.clients:
            client.echo(b"x" * 1000)
        self.ctl("server", "1", "drain")

    def get(self, path: str) -> tuple[str, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=10) as reply:
            return reply.headers.get("content-type", ""), reply.read()

    def test_metrics_parse(self) -> None:
        """/metrics is valid Prometheus text, with the figures penbal counts."""
        content_type, body = self.get("/metrics")
        self.assertIn("text/plain", content_type)
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        active = {s.labels["server"]: s.value
                  for s in families["penbal_backend_active_connections"].samples}
        self.assertEqual(active, {"0": 2, "1": 2})
        sent = sum(s.value for s in families["penbal_backend_sent_bytes"].samples
                   if s.name.endswith("_total"))
        self.assertEqual(sent, 4000)
        states = {(s.labels["server"], s.labels["state"]) for s in
                  families["penbal_backend_state"].samples if s.value == 1}
        self.assertEqual(states, {("0", "up"), ("1", "draining")})
        self.assertGreaterEqual(
            families["penbal_connections_accepted"].samples[0].value, 4
        )

    def test_status_json_is_the_control_ports(self) -> None:
        """/status.json and 'status json' show the same data."""
        content_type, body = self.get("/status.json")
        self.assertEqual(content_type, "application/json")
        over_http = json.loads(body)
        over_control = self.status()
        for data in (over_http, over_control):
            data.pop("time")
            for connection in data["connections"]:
                connection.pop("age")
        self.assertEqual(over_http, over_control)

    def test_read_only(self) -> None:
        """Anything but GET/HEAD is refused."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.http}/", data=b"x",
                                         method="POST")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        self.assertEqual(caught.exception.code, 405)

    def test_page_in_headless_chromium(self) -> None:
        """A real browser renders the page: backends, states, reasons, connections."""
        browser = chromium()
        artefacts = os.path.abspath("artefacts")
        os.makedirs(artefacts, exist_ok=True)
        screenshot = os.path.join(artefacts, "status-page.png")
        url = f"http://127.0.0.1:{self.http}/"
        for mode in (f"--screenshot={screenshot}", "--dump-dom"):
            profile = tempfile.mkdtemp(prefix="penbal-chromium-")
            self.addCleanup(shutil.rmtree, profile, True)
            result = subprocess.run(
                [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", mode, url],
                capture_output=True, text=True, timeout=120,
            )
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        dom = result.stdout
        for text in ("penbal status", "Backends (2)", "draining: no new connections",
                     "Live connections (4)", f"127.0.0.1:{self.backends_ports()[1]}",
                     'class="state state-draining"', 'class="state state-up"'):
            self.assertIn(text, dom)
        with open(screenshot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(screenshot), 10_000)
        kept = keep_artefact(screenshot)
        self.assertEqual(kept, KEPT_ARTEFACTS / "status-page.png")
        self.assertEqual(kept.read_bytes(), Path(screenshot).read_bytes())

    def backends_ports(self) -> list[int]:
        return [int(b["port"]) for b in self.status()["backends"]]


class HealthEndpointTests(OperationsCase):
    """GET /health of a real penbal follows its backends' health check."""

    def status_of(self, http: int) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_follows_backends(self) -> None:
        """200 while the backend answers the TCP check; 503 within the check's bound once
        it is gone, with the reason."""
        http = free_port()
        (backend,) = self.backends("b0")
        self.start([backend], "--http", f"127.0.0.1:{http}", "--check", "tcp",
                   "--check-interval", "0.2", "--check-timeout", "0.2", "--fall", "1")
        self.assertEqual(self.status_of(http), (200, "serving: 1 of 1 backends usable\n"))
        backend.stop()
        wait_for(lambda: self.status_of(http)[0] == 503, 5, "/health to say 503")
        code, reason = self.status_of(http)
        self.assertEqual(code, 503)
        self.assertTrue(reason.startswith(f"no usable backend: {backend.address} unfit"), reason)
