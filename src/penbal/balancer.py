# -*- test-case-name: tests.test_balancer -*-
"""
What TCP and UDP relaying share: the backend table, the selection policy and Pen's settings,
and the verdict on a failed connection to a backend (blacklisting, L{Balancer.attempt_failed}).

A policy may be a third party's: if its C{choose} raises, returns something that is not a
sequence, or names a backend that was not a candidate, the connection is not lost.  The
balancer logs one line naming the policy and orders the candidates round-robin instead.
penbal's own round-robin policy (C{-r}) is not checked: it returns a new list of candidates,
each once, by construction (and it is the order every new connection asks for).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.logger import Logger

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy
from penbal.policies.naming import policy_name
from penbal.policies.roundrobin import RoundRobinPolicy
from penbal.pool import BackendPool

log = Logger(namespace="penbal.balancer")

#: After a policy failure is logged, further ones are counted and reported at most this often.
POLICY_REPORT_INTERVAL = 60.0


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
        #: How many times the policy failed (raised, or chose a non-candidate) so far.
        self.policy_failures = 0
        self._fallback = RoundRobinPolicy()
        self._reported_at: float | None = None
        self._unreported = 0

    def order(self, client: ClientInfo) -> Sequence[Backend]:
        """The backends to try for C{client}, best first (possibly none).

        The policy's order, checked: if the policy fails, the candidates round-robin.
        """
        candidates = self.pool.candidates()
        if self.admits is not None:
            candidates = [b for b in candidates if self.admits(client, b)]
        if not candidates:
            return ()
        policy = self.policy
        try:
            chosen = policy.choose(client, candidates)
            if type(policy) is RoundRobinPolicy:  # not a subclass: see the module docstring
                return chosen
            problem, order = _checked(chosen, candidates)
        except Exception as e:
            said = str(e).splitlines()[0] if str(e).strip() else ""
            problem, order = f"raised {type(e).__name__}" + (f": {said}" if said else ""), []
        if problem is None:
            return order
        self._policy_failed(problem, len(candidates))
        return self._fallback.choose(client, candidates)

    def _policy_failed(self, problem: str, candidates: int) -> None:
        """Log one line about a failing policy, then at most one per report interval."""
        self.policy_failures += 1
        now = self.pool.now()
        if self._reported_at is not None and now - self._reported_at < POLICY_REPORT_INTERVAL:
            self._unreported += 1
            return
        more = f" ({self._unreported} more failures since the last report)" \
            if self._unreported else ""
        self._reported_at, self._unreported = now, 0
        log.error(
            "{policy} failed to order the backends: it {problem}; "
            "using round-robin over the {candidates} candidates instead{more}",
            policy=policy_name(self.policy), problem=problem, candidates=candidates,
            more=more, penbal_event="policy-error",
        )

    def attempt_failed(self, backend: Backend, why: str) -> None:
        """A connection to C{backend} failed (refused, timed out, not ready): blacklist it for
        the configured seconds.  The emergency server is never blacklisted; its failures are
        counted.  The one place a failed attempt is judged, whatever the connector."""
        settings = self.settings
        if backend is settings.emergency:
            backend.counters.failures += 1
            log.warn("emergency server {backend} failed ({why})", backend=backend.address, why=why)
            return
        backend.blacklist(self.pool.now(), settings.blacklist, why)
        log.warn(
            "backend {backend} failed ({why}): blacklisted for {seconds}s",
            backend=backend.address,
            why=why,
            seconds=settings.blacklist,
        )

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        """Tell the policy where the client went (sticky tables learn from this; penbal's
        round-robin learns nothing from it)."""
        policy = self.policy
        if backend is not self.settings.emergency and type(policy) is not RoundRobinPolicy:
            policy.connected(client, backend)


def _checked(
    chosen: Sequence[Backend], candidates: Sequence[Backend]
) -> tuple[str | None, list[Backend]]:
    """C{chosen} as a list without repeats, or what is wrong with it (not a candidate)."""
    if isinstance(chosen, str | bytes) or not hasattr(chosen, "__iter__"):
        return f"returned {_short(chosen)}, not a sequence of backends", []
    allowed = set(candidates)
    order: list[Backend] = []
    seen: set[Backend] = set()
    for backend in chosen:
        if not isinstance(backend, Backend) or backend not in allowed:
            return f"returned {_short(backend)}, which is not one of the candidates", []
        if backend not in seen:
            seen.add(backend)
            order.append(backend)
    return None, order


def _short(value: object) -> str:
    """A repr fit for one log line."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."
