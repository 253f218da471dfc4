"""
Replays of check rounds recorded on a real 3-node cluster (MariaDB 10.11, Galera 26.4) while
node 3 was frozen with SIGSTOP for 9.5 s and resumed (C{tests/health/record_rounds.py}): after
C{SIGCONT} it said Synced/Primary at its old configuration id (conf 4, the others at conf 5) for
ten rounds, about 2 s.  Each round is judged as penbal's Galera check judges one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import Fitness
from penbal.health.fitness import galera_verdict
from penbal.health.partition import ClusterViews
from penbal.health.result import CheckResult
from tests.health import rows

RECORDED = Path(__file__).parent / "recorded" / "freeze_resume.json"
STALE_NODE = 2  # node 3, zero-based


def load() -> tuple[list[float], list[list[CheckResult]]]:
    """Each round's time and its three results."""
    data = json.loads(RECORDED.read_text())
    times, rounds = [], []
    for round_ in data["rounds"]:
        times.append(float(round_["t"]))
        rounds.append([CheckResult(False, 0.5, node["error"]) if "error" in node
                       else rows.seen(node) for node in round_["nodes"]])
    return times, rounds


def is_stale(round_: Sequence[CheckResult]) -> bool:
    """Node 3 says Primary at a lower configuration id than another Primary node."""
    stale = round_[STALE_NODE]
    if not stale.reachable or stale.values.get("wsrep_cluster_status") != "Primary":
        return False
    others = [int(r.values["wsrep_cluster_conf_id"]) for r in round_
              if r is not stale and r.reachable
              and r.values.get("wsrep_cluster_status") == "Primary"]
    return any(int(stale.values["wsrep_cluster_conf_id"]) < conf for conf in others)


def majority_rule(result: CheckResult, round_: Sequence[CheckResult]) -> Fitness:
    """The rule penbal had before: unfit only when a strict majority of Primary voters holds
    another (UUID, conf id) view; a tie passes everyone."""
    votes = Counter((r.values["wsrep_cluster_state_uuid"], r.values["wsrep_cluster_conf_id"])
                    for r in round_ if r.reachable
                    and r.values.get("wsrep_cluster_status") == "Primary")
    mine = (result.values.get("wsrep_cluster_state_uuid"),
            result.values.get("wsrep_cluster_conf_id"))
    if votes:
        view, count = votes.most_common(1)[0]
        if count * 2 > sum(votes.values()) and view != mine:
            return Fitness.UNFIT
    return galera_verdict(result).fitness


def replay(times: Sequence[float], rounds: Sequence[Sequence[CheckResult]], node: int
           ) -> list[Fitness]:
    """The fitness of C{node} in each round, judged with memory, the clock at each round's
    recorded time."""
    clock = Clock()
    views = ClusterViews(clock, interval=0.2)
    out = []
    for t, round_ in zip(times, rounds, strict=True):
        clock.advance(t - clock.seconds())
        result = round_[node]
        out.append(views.judge(galera_verdict(result), result, round_).fitness)
    return out


class ReplayTests(SynchronousTestCase):
    """The recorded freeze and resume, as recorded and with a node's answers taken away."""

    def setUp(self) -> None:
        self.times, self.rounds = load()
        self.stale = [i for i, r in enumerate(self.rounds) if is_stale(r)]

    def test_recording_has_a_stale_window(self) -> None:
        """The recording is what the tests need: ten stale rounds."""
        self.assertEqual(len(self.stale), 10)

    def test_stale_node_unfit_as_recorded(self) -> None:
        """With all three answers, the stale node is unfit in every stale round."""
        verdicts = replay(self.times, self.rounds, STALE_NODE)
        self.assertEqual({verdicts[i] for i in self.stale}, {Fitness.UNFIT})

    def test_tie(self) -> None:
        """Node 2's check times out in every round: the stale node ties with node 1. The
        majority rule passes it in every stale round; penbal's rule fails it in every one."""
        tied = [[r[0], rows.FROZEN, r[2]] for r in self.rounds]
        old = [majority_rule(tied[i][STALE_NODE], tied[i]) for i in self.stale]
        self.assertEqual(set(old), {Fitness.FIT})
        verdicts = replay(self.times, tied, STALE_NODE)
        self.assertEqual({verdicts[i] for i in self.stale}, {Fitness.UNFIT})

    def test_lone_voter(self) -> None:
        """Nodes 1 and 2 go non-Primary in the stale rounds (as when the resumed node merges
        back): the stale node is the only Primary voter, and still unfit (conf 5 is
        remembered)."""
        non_primary = rows.seen(rows.NON_PRIMARY)
        alone = [[non_primary, non_primary, r[2]] if i in self.stale else r
                 for i, r in enumerate(self.rounds)]
        self.assertEqual({majority_rule(alone[i][STALE_NODE], alone[i]) for i in self.stale},
                         {Fitness.FIT})
        verdicts = replay(self.times, alone, STALE_NODE)
        self.assertEqual({verdicts[i] for i in self.stale}, {Fitness.UNFIT})

    def test_healthy_rounds_unchanged(self) -> None:
        """Every round in which the three nodes agree (before the freeze, after the rejoin)
        leaves all three fit, as the majority rule did."""
        agreeing = [i for i, r in enumerate(self.rounds)
                    if all(x.reachable for x in r)
                    and len({x.values.get("wsrep_cluster_conf_id") for x in r}) == 1
                    and all(x.values.get("wsrep_cluster_status") == "Primary" for x in r)]
        self.assertGreater(len(agreeing), 40)
        for node in range(3):
            verdicts = replay(self.times, self.rounds, node)
            self.assertEqual({verdicts[i] for i in agreeing}, {Fitness.FIT}, node)
