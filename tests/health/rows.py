# -*- test-case-name: tests.health.test_fitness -*-
"""
wsrep status and variables as read from real MariaDB 10.11 / Galera 26.4 nodes (a 3-node
cluster on loopback, by the Galera check's own query), one row per scenario of the notes.
"""

from __future__ import annotations

from penbal.health.result import CheckResult

UUID = "7543e1d6-e8ba-11f1-962f-e314c3a6cd23"
NON_PRIMARY_CONF = "18446744073709551615"


def row(**changes: str) -> dict[str, str]:
    """A healthy node's values (node 1 of 3, conf 3), with C{changes}."""
    values = {
        "wsrep_local_state": "4",
        "wsrep_local_state_comment": "Synced",
        "wsrep_ready": "ON",
        "wsrep_connected": "ON",
        "wsrep_cluster_status": "Primary",
        "wsrep_cluster_size": "3",
        "wsrep_cluster_conf_id": "3",
        "wsrep_cluster_state_uuid": UUID,
        "wsrep_desync": "OFF",
        "wsrep_reject_queries": "NONE",
        "wsrep_sst_donor_rejects_queries": "OFF",
        "wsrep_node_name": "node1",
        "wsrep_local_index": "0",
        "wsrep_incoming_addresses": "127.0.0.1:3361,127.0.0.1:3362,127.0.0.1:3363",
        "wsrep_node_incoming_address": "127.0.0.1:3361",
        "wsrep_local_recv_queue": "0",
        "wsrep_on": "ON",
    }
    values.update(changes)
    return values


HEALTHY = row()
# SET GLOBAL wsrep_desync=ON
DESYNCED = row(
    wsrep_local_state="2", wsrep_local_state_comment="Donor/Desynced", wsrep_desync="ON"
)
# A real SST donor: state 2 without wsrep_desync.
SST_DONOR = row(wsrep_local_state="2", wsrep_local_state_comment="Donor/Desynced")
SST_DONOR_REJECTING = row(
    wsrep_local_state="2",
    wsrep_local_state_comment="Donor/Desynced",
    wsrep_sst_donor_rejects_queries="ON",
)
# SET GLOBAL wsrep_reject_queries=ALL: still 4/Synced.
REJECTING = row(wsrep_reject_queries="ALL")
# Lost quorum (the other two nodes killed), and a frozen node right after SIGCONT.
NON_PRIMARY = row(
    wsrep_local_state="0",
    wsrep_local_state_comment="Initialized",
    wsrep_ready="OFF",
    wsrep_cluster_status="non-Primary",
    wsrep_cluster_size="1",
    wsrep_cluster_conf_id=NON_PRIMARY_CONF,
    wsrep_incoming_addresses="127.0.0.1:3361",
)
JOINER = row(wsrep_local_state="1", wsrep_local_state_comment="Joining")
JOINED = row(wsrep_local_state="3", wsrep_local_state_comment="Joined")
# After a node left: the two others agree on conf 4 with size 2.
AFTER_EVICTION = row(
    wsrep_cluster_size="2",
    wsrep_cluster_conf_id="4",
    wsrep_incoming_addresses="127.0.0.1:3361,127.0.0.1:3362",
)
# A resumed frozen node can report its old, stale Synced view for a few seconds.
STALE_RESUMED = row(wsrep_node_name="node3", wsrep_node_incoming_address="127.0.0.1:3363")

# kill -9: the check's connect is refused.
REFUSED = CheckResult(
    False,
    0.045,
    "MySQL 2003: Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)",
)
# kill -STOP: connect succeeds, the handshake never comes (check timeout 1 s: 1.038 s).
FROZEN = CheckResult(
    False, 1.038, "MySQL 2013: Lost connection to MySQL server during query (timed out)"
)


def seen(values: dict[str, str], latency: float = 0.04) -> CheckResult:
    """A check that read C{values}."""
    return CheckResult(True, latency, values=values)
