# -*- test-case-name: tests.status.test_examples -*-
"""
The monitoring examples in docs/examples (a Grafana dashboard, Prometheus alerting rules)
against a running penbal's /metrics: every metric they use exists, with the labels they
select on, so they cannot rot when a metric is renamed.
"""

from __future__ import annotations

import functools
import json
import re
import socket
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import PenbalProcess, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
DASHBOARD = EXAMPLES / "penbal-dashboard.json"
RULES = EXAMPLES / "penbal-alerts.yml"

#: Metrics and labels that Prometheus adds itself (not in penbal's /metrics).
PROMETHEUS_METRICS = {"up"}
TARGET_LABELS = {"job", "instance"}
#: A metric name, then optionally its {label matchers}.
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_expressions() -> list[str]:
    """The C{expr:} of every rule (each written on one line in the file)."""
    return [line.split("expr:", 1)[1].strip() for line in RULES.read_text().splitlines()
            if line.strip().startswith("expr:")]


def selectors(expression: str) -> Iterable[tuple[str, list[tuple[str, str, str]]]]:
    """The metrics an expression reads, each with its label matchers."""
    for name, braces in SELECTOR.findall(expression):
        if name.startswith("penbal") or name in PROMETHEUS_METRICS:
            yield name, MATCHER.findall(braces or "")


@functools.cache
def served_samples() -> dict[str, dict[str, set[str]]]:
    """Sample name -> label name -> values seen, from a real penbal's /metrics (once per run)."""
    backend = NameBackend("db")
    http = free_port()
    port = free_port()
    proc = PenbalProcess(["--http", f"127.0.0.1:{http}", f"127.0.0.1:{port}", backend.address],
                         listen_port=port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.shutdown(socket.SHUT_WR)
            s.recv(100)
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    finally:
        proc.stop()
        backend.stop()
    samples: dict[str, dict[str, set[str]]] = {}
    suffixes = {"counter": "_total", "info": "_info"}
    for family in text_string_to_metric_families(text):
        samples.setdefault(family.name + suffixes.get(family.type, ""), {})
        for sample in family.samples:
            labels = samples.setdefault(sample.name, {})
            for key, value in sample.labels.items():
                labels.setdefault(key, set()).add(value)
    return samples


class ExamplesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.samples = served_samples()

    def check(self, expressions: list[str]) -> None:
        self.assertTrue(expressions)
        for expression in expressions:
            used = list(selectors(expression))
            self.assertTrue(used, f"no metric in {expression!r}")
            for name, matchers in used:
                if name in PROMETHEUS_METRICS:
                    continue
                self.assertIn(name, self.samples, f"{name} (in {expression!r}) is not in /metrics")
                labels = self.samples[name]
                for label, operator, value in matchers:
                    if label in TARGET_LABELS or not labels:  # no samples: no labels to see
                        continue
                    self.assertIn(label, labels, f"{name} has no label {label!r}")
                    if operator == "=":
                        self.assertIn(value, labels[label], f"{name}{{{label}={value!r}}}")

    def test_dashboard(self) -> None:
        """Every metric and label the Grafana dashboard reads is in /metrics."""
        self.check(dashboard_expressions())

    def test_alert_rules(self) -> None:
        """Every metric and label the alerting rules read is in /metrics, and the rules
        cover what the docs promise."""
        self.check(rule_expressions())
        alerts = {line.split("alert:", 1)[1].strip() for line in RULES.read_text().splitlines()
                  if line.strip().startswith("- alert:")}
        self.assertLessEqual({"PenbalDown", "PenbalNoUsableBackend", "PenbalBackendUnfit",
                              "PenbalConnectionFailuresRising"}, alerts)

    def test_check_can_fail(self) -> None:
        """A renamed metric, or a label value that never occurs, is caught."""
        for wrong in ("rate(penbal_backend_failure_total[5m])",
                      'penbal_backend_state{state="sleepy"}',
                      'penbal_backend_usable{node="1"}'):
            self.assertRaises(self.failureException, self.check, [wrong])
