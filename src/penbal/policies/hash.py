# -*- test-case-name: tests.policies.test_hash -*-
"""
Client-IP hashing by rendezvous (highest-random-weight): the client's IP decides the backend.

Each backend gets a score from a keyed BLAKE2b digest of the client IP and the backend's
``HOST:PORT``; the highest score wins and the rest, by score, are the failover order.  Removing
a backend moves only the clients that were on it, and any two penbal processes with the same
backends agree without talking (the digest is the same in every process, unlike C{hash()}).
Pen's C{-h} instead takes the raw IPv4 address modulo the number of servers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy

_PERSON = b"penbal-hrw"


def rendezvous_score(client_host: str, backend_address: str) -> int:
    """A stable 64-bit score of one (client, backend) pair: the same in every process."""
    digest = hashlib.blake2b(
        f"{client_host}\0{backend_address}".encode(), digest_size=8, person=_PERSON
    ).digest()
    return int.from_bytes(digest, "big")


def rendezvous_order(client_host: str, backends: Sequence[Backend]) -> list[Backend]:
    """C{backends} by falling score for C{client_host} (ties, practically impossible, by index)."""
    return sorted(
        backends, key=lambda b: (-rendezvous_score(client_host, b.address), b.index)
    )


@implementer(ISelectionPolicy)
class RendezvousHashPolicy:
    """The backend with the highest score for the client's IP, among those below MAXC."""

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        return [b for b in rendezvous_order(client.host, candidates) if b.below_soft_limit()]

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass
