# -*- test-case-name: tests.test_balancer -*-
"""
What TCP and UDP relaying share: the backend table, the selection policy and Pen's settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy
from penbal.pool import BackendPool


@dataclass
class Settings:
    """Pen's knobs that apply to every connection (changeable at run time)."""

    timeout: float = 3.0
    blacklist: float = 30.0
    max_connections: int = 500
    stubborn: bool = False
    emergency: Backend | None = None


class Balancer:
    """Chooses backends for clients: the pool filtered to candidates, ordered by the policy."""

    def __init__(self, pool: BackendPool, policy: ISelectionPolicy, settings: Settings) -> None:
        self.pool = pool
        self.policy = policy
        self.settings = settings
        #: Pen's per-server ACLs (C{server N acl A}), set by penbal.control when any is in use.
        self.admits: Callable[[ClientInfo, Backend], bool] | None = None

    def order(self, client: ClientInfo) -> Sequence[Backend]:
        """The backends to try for C{client}, best first (possibly none)."""
        candidates = self.pool.candidates()
        if self.admits is not None:
            candidates = [b for b in candidates if self.admits(client, b)]
        if not candidates:
            return ()
        return self.policy.choose(client, candidates)

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        """Tell the policy where the client went (sticky tables learn from this)."""
        if backend is not self.settings.emergency:
            self.policy.connected(client, backend)
