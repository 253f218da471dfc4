"""
Plugin objects for penbal's built-in selection policies.
"""

from __future__ import annotations

from penbal.policies.hash import RendezvousHashPolicy
from penbal.policies.leastconn import LeastConnPolicy
from penbal.policies.plugin import PolicyPlugin
from penbal.policies.prio import PrioPolicy
from penbal.policies.randompick import RandomPolicy
from penbal.policies.roundrobin import RoundRobinPolicy
from penbal.policies.sticky import build_sticky
from penbal.policies.weight import WeightPolicy

sticky = PolicyPlugin(
    "sticky",
    "returning clients go back to their last backend, new ones round-robin (Pen's default)",
    build_sticky,
)

roundrobin = PolicyPlugin(
    "roundrobin",
    "each new client goes to the next backend in turn (Pen's -r)",
    lambda context: RoundRobinPolicy(),
)

hash_policy = PolicyPlugin(
    "hash",
    "the client IP decides the backend, by rendezvous hashing (Pen's -r -h)",
    lambda context: RendezvousHashPolicy(),
)

weight = PolicyPlugin(
    "weight",
    "the backend with the fewest connections per unit of weight (Pen's -r -W)",
    lambda context: WeightPolicy(),
)

prio = PolicyPlugin(
    "prio",
    "the available backend with the lowest prio number (Pen's -r --prio)",
    lambda context: PrioPolicy(),
)

leastconn = PolicyPlugin(
    "leastconn",
    "the backend with the fewest active connections, ties in turn",
    lambda context: LeastConnPolicy(),
)

random_policy = PolicyPlugin(
    "random",
    "a backend drawn at random",
    lambda context: RandomPolicy(context.random),
)
