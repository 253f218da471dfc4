"""
Plugin object for the Galera single-writer policy.
"""

from __future__ import annotations

from penbal.policies.galera_writer import build_galera_writer
from penbal.policies.plugin import PolicyPlugin

galera_writer = PolicyPlugin(
    "galera-writer",
    "every client to one writer: lowest prio, then wsrep_local_index, then address",
    build_galera_writer,
)
