# -*- test-case-name: tests.health.test_discovery -*-
"""
C{--discover}: learn the cluster's nodes from C{wsrep_incoming_addresses} as reported by fit
nodes, and add the ones penbal does not know to the backend table.

A node is known under the address it was given, and under the address it calls itself
(C{wsrep_node_incoming_address}), so a node configured as C{db1:3306} that reports
C{10.0.0.1:3306} is not added twice.  New nodes start unfit until their first check.
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.logger import Logger

from penbal.address import SpecError, parse_backend
from penbal.backend import Backend, Fitness, Health
from penbal.health.result import CheckResult
from penbal.pool import BackendPool

log = Logger(namespace="penbal.health")


def incoming_addresses(values: Mapping[str, str]) -> list[str]:
    """The C{HOST:PORT} entries of C{wsrep_incoming_addresses} (empty and AUTO ones left out)."""
    text = values.get("wsrep_incoming_addresses", "")
    return [a.strip() for a in text.split(",") if a.strip() and a.strip().upper() != "AUTO"]


class Discovery:
    """A round observer of the health checks that grows the pool with new cluster nodes."""

    def __init__(self, pool: BackendPool, default_port: int) -> None:
        self._pool = pool
        self._default_port = default_port
        # What each backend calls itself (its wsrep_node_incoming_address).
        self._aliases: dict[Backend, str] = {}
        self._refused: set[str] = set()

    def known(self) -> set[str]:
        """Every address under which a backend of the pool is known."""
        present = set(self._pool)
        aliases = {a for b, a in self._aliases.items() if b in present}
        return {b.address for b in present} | aliases

    def __call__(self, results: Mapping[Backend, CheckResult]) -> None:
        for backend, result in results.items():
            alias = result.values.get("wsrep_node_incoming_address", "")
            if alias and alias.upper() != "AUTO":
                self._aliases[backend] = alias
        known = self.known()
        for backend, result in results.items():
            if backend.health.fitness is not Fitness.FIT:
                continue
            for address in incoming_addresses(result.values):
                if address in known or address in self._refused:
                    continue
                added = self._add(address, backend)
                if added is not None:
                    known.add(address)
                    known.add(added.address)

    def _add(self, address: str, source: Backend) -> Backend | None:
        try:
            spec = parse_backend(address, self._default_port)
        except SpecError as e:
            self._refused.add(address)
            log.warn("not adding discovered node {address}: {error}", address=address, error=e)
            return None
        if self._pool.find(spec.address) is not None:
            return None
        backend = self._pool.add(spec)
        backend.health = Health(
            Fitness.UNFIT, f"discovered from {source.address}, not checked yet", self._pool.now()
        )
        log.info(
            "discovered node {address} from {source}: added as backend {index}",
            penbal_event="discovered",
            address=spec.address,
            source=source.address,
            index=backend.index,
        )
        return backend
