# -*- test-case-name: tests.config.test_edit -*-
"""
The configuration of a running balancer as plain, immutable data.

Control commands edit it (L{penbal.config.edit}), the config file builds it, C{write} prints
it, and L{penbal.config.reconcile} makes the running balancer match it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from penbal.address import BackendSpec
from penbal.backend import AdminState, Backend
from penbal.edges.acl import ACL_COUNT, AclEntry
from penbal.policies.choice import PolicyChoice

Acls = tuple[tuple[AclEntry, ...], ...]
NO_ACLS: Acls = ((),) * ACL_COUNT
DEFAULT_POLICY = PolicyChoice("sticky")


@dataclass(frozen=True)
class BackendEntry:
    """One server of the table as configured.

    C{admin} and C{blacklist} are C{None} when the configuration does not say (a config file
    that does not mention drain keeps a drained backend drained).  C{backend} is the live
    backend this entry describes, if any; C{retiring} marks a backend draining out of the table.
    """

    spec: BackendSpec
    acl: int = 0
    admin: AdminState | None = None
    blacklist: float | None = None
    backend: Backend | None = field(default=None, compare=False)
    retiring: bool = False
    #: Set while reconciling: the backend was added to the table for this entry.
    added: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Configuration:
    """Everything the control language can set."""

    backends: tuple[BackendEntry, ...] = ()
    policy: PolicyChoice = DEFAULT_POLICY
    stubborn: bool = False
    timeout: float = 3.0
    blacklist: float = 30.0
    conn_max: int = 500
    tracking: float = 0.0
    clients_max: int = 2048
    emergency: BackendSpec | None = None
    acls: Acls = NO_ACLS
    client_acl: int = 0
    control_acl: int = 0
    #: HTTP mode (C{-H}, Pen's C{http}): X-Forwarded-For added to clients' requests.
    http: bool = False

    def detached(self) -> Configuration:
        """The same configuration, tied to no live backend (a base for config files)."""
        return replace(
            self,
            backends=tuple(
                BackendEntry(entry.spec, entry.acl)
                for entry in self.backends
                if not entry.retiring
            ),
        )
