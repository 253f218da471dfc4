# -*- test-case-name: tests.udp.test_relay,tests.status.test_snapshot -*-
"""
The UDP front side's figures, counted by L{penbal.udp.relay} and shown by L{penbal.status}.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UDPStats:
    """Figures of the UDP front side (the backends' own figures are in their counters)."""

    datagrams_in: int = 0
    """Datagrams received from clients."""
    datagrams_out: int = 0
    """Datagrams sent to clients (the backends' replies)."""
    sessions: int = 0
    """Sessions started."""
    moved: int = 0
    """Sessions moved to another backend (theirs failed, became unfit or was set down)."""
    resent: int = 0
    """Unanswered datagrams sent again to the new backend of a moved session."""
    no_backend: int = 0
    """Datagrams dropped because no backend (nor emergency server) could take them."""
    dropped: int = 0
    """Datagrams dropped otherwise: a full socket buffer, too many waiting for a host name."""
    denied: int = 0
    """Datagrams of new clients refused by the client ACL."""
