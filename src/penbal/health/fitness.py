# -*- test-case-name: tests.health.test_fitness -*-
"""
The rules that turn one check's observations into a L{Verdict}: pure functions, no I/O.

A Galera node is fit only when it is Synced (C{wsrep_local_state=4}), ready, connected, in the
Primary component and not rejecting queries.  A Donor/Desynced node (state 2) is a last resort,
unfit or fit according to the C{--donor} policy.  C{SELECT 1} proves none of this: it succeeds
on non-Primary and rejecting nodes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from penbal.backend import Fitness
from penbal.health.result import FIT, CheckResult, Verdict

SYNCED = "4"
DONOR = "2"
STATE_NAMES = {
    "0": "Initialized",
    "1": "Joining",
    "2": "Donor/Desynced",
    "3": "Joined",
    "4": "Synced",
}


class DonorPolicy(enum.Enum):
    """What C{--donor} does with a Donor/Desynced node (state 2)."""

    AVOID = "avoid"  # only when no Synced node is left (Fitness.LAST_RESORT)
    NEVER = "never"  # never (Fitness.UNFIT)
    USE = "use"  # like a Synced node (Fitness.FIT)


def reachability_verdict(result: CheckResult) -> Verdict:
    """The TCP check's rule: fit when it connected."""
    if result.reachable:
        return FIT
    return Verdict(Fitness.UNFIT, result.error or "unreachable")


def _unfit(reason: str) -> Verdict:
    return Verdict(Fitness.UNFIT, reason)


def state_name(values: Mapping[str, str]) -> str:
    """C{wsrep_local_state} with its meaning, e.g. C{"2 (Donor/Desynced)"}."""
    state = values.get("wsrep_local_state", "?")
    comment = values.get("wsrep_local_state_comment") or STATE_NAMES.get(state, "unknown")
    return f"{state} ({comment})"


def galera_verdict(result: CheckResult, donor: DonorPolicy = DonorPolicy.AVOID) -> Verdict:
    """
    The Galera rules, first failing rule first: unreachable, not a Galera node, not connected
    to the group, not Primary, not ready, rejecting queries, then the local state.
    """
    if not result.reachable:
        return _unfit(result.error or "unreachable")
    values = result.values
    if "wsrep_local_state" not in values:
        return _unfit("no wsrep status: not a Galera node, or wsrep_on=OFF")
    connected = values.get("wsrep_connected", "?")
    if connected != "ON":
        return _unfit(f"not connected to the cluster (wsrep_connected={connected})")
    status = values.get("wsrep_cluster_status", "?")
    if status != "Primary":
        return _unfit(f"not in the Primary component (wsrep_cluster_status={status})")
    ready = values.get("wsrep_ready", "?")
    if ready != "ON":
        return _unfit(f"not ready (wsrep_ready={ready})")
    reject = values.get("wsrep_reject_queries", "NONE")
    if reject != "NONE":
        return _unfit(f"rejecting queries (wsrep_reject_queries={reject})")
    state = values["wsrep_local_state"]
    if state == SYNCED:
        return FIT
    if state != DONOR:
        return _unfit(f"not synced (wsrep_local_state={state_name(values)})")
    return _donor_verdict(values, donor)


def _donor_verdict(values: Mapping[str, str], donor: DonorPolicy) -> Verdict:
    """State 2: a manual desync (C{wsrep_desync=ON}) or a real state-transfer donor."""
    manual = values.get("wsrep_desync", "OFF") == "ON"
    if not manual and values.get("wsrep_sst_donor_rejects_queries", "OFF") == "ON":
        return _unfit("SST donor rejecting queries (wsrep_sst_donor_rejects_queries=ON)")
    what = "desynced (wsrep_desync=ON)" if manual else "donor (wsrep_local_state=2)"
    if donor is DonorPolicy.USE:
        return Verdict(Fitness.FIT, f"{what}, used as any node (--donor use)")
    if donor is DonorPolicy.NEVER:
        return _unfit(f"{what}, never used (--donor never)")
    return Verdict(Fitness.LAST_RESORT, f"{what}: used only when no synced node is fit")
