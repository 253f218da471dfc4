# -*- test-case-name: tests.ha.test_pair -*-
"""
keepalived for the HA tests: the configuration of each balancer host (the one the docs show,
see L{render}), and its command line (foreground, logs to stderr, pid files of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The example the docs show (docs/examples/keepalived/): the tests run exactly this text, with
# their own paths and addresses substituted.
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "keepalived"
TEMPLATE = EXAMPLES / "keepalived.conf"
HEALTH_SCRIPT = EXAMPLES / "penbal-health"


@dataclass(frozen=True)
class Peer:
    """What differs between the two balancer hosts."""

    name: str
    state: str
    priority: int


LB1 = Peer("lb1", "MASTER", 150)
LB2 = Peer("lb2", "BACKUP", 100)

# Values of the docs' example, replaced by the test's own. 192.0.2.10 is only the docs'
# placeholder text: the VIP the test uses lives inside the network namespaces (netns) that
# the HA test creates and removes, and nothing else is ever reached.
DOCS_VALUES = {
    "router_id lb1": "router_id {name}",
    "state MASTER": "state {state}",
    "priority 150": "priority {priority}",
    "/usr/local/bin/penbal-health": "{script}",
    "/run/penbal-health": "{track}",
    "192.0.2.10/24": "{vip}/24",
    "127.0.0.1 8080": "127.0.0.1 {http}",
}


def render(peer: Peer, script: Path, track: Path, vip: str, http: int) -> str:
    """The docs' keepalived.conf for C{peer}, with the test's paths, VIP and --http port."""
    text = TEMPLATE.read_text()
    for docs, mine in DOCS_VALUES.items():
        if docs not in text:
            raise AssertionError(f"{TEMPLATE} no longer contains {docs!r}")
        text = text.replace(docs, mine.format(
            name=peer.name, state=peer.state, priority=peer.priority, script=script,
            track=track, vip=vip, http=http))
    return text


def command(config: Path, run_dir: Path, name: str) -> list[str]:
    """keepalived in the foreground with its own pid files (two instances on one machine
    would otherwise share /run/keepalived.pid, and the second would exit at once)."""
    return ["keepalived", "--dont-fork", "--log-console", "--log-detail",
            "--use-file", str(config),
            "--pid", str(run_dir / f"{name}.pid"),
            "--vrrp_pid", str(run_dir / f"{name}-vrrp.pid"),
            "--checkers_pid", str(run_dir / f"{name}-checkers.pid")]
