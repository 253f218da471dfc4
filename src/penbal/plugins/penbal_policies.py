"""
Plugin objects for penbal's built-in selection policies.
"""

from __future__ import annotations

from penbal.policies.plugin import PolicyPlugin
from penbal.policies.roundrobin import RoundRobinPolicy

roundrobin = PolicyPlugin(
    "roundrobin",
    "each new client goes to the next backend in turn (Pen's -r)",
    lambda context: RoundRobinPolicy(),
)
