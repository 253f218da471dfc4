# -*- test-case-name: tests.edges.test_acl -*-
"""
Pen's access lists: numbered lists of C{permit}/C{deny} entries for IPv4 and IPv6 networks.

Semantics are Pen's, measured against Pen 0.34.1: the first entry that matches decides; when
none matches, the answer is the opposite of the last entry (a list of permits denies everyone
else, a list of denies permits everyone else); an empty list permits everyone.  Lists are
numbered 0-9 and C{client_acl} (default 0, which starts empty) picks the one checked for clients.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from penbal.optiontypes import is_digits

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ACL_COUNT = 10
ACL_FORM = "N permit|deny ADDR[/PREFIX] (or N permit|deny IPV4 NETMASK), N from 0 to 9"


class AclError(ValueError):
    """An access-list entry or number is malformed; the message names the value and the form."""


@dataclass(frozen=True)
class AclEntry:
    """One line of an access list."""

    permit: bool
    network: IPNetwork

    def matches(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """True if C{address} is inside this entry's network (families must agree)."""
        return address.version == self.network.version and address in self.network

    def format(self) -> str:
        """The entry as Pen's control language writes it (without the list number)."""
        action = "permit" if self.permit else "deny"
        return f"{action} {self.network.with_prefixlen}"


def parse_network(text: str, mask: str | None = None) -> IPNetwork:
    """
    C{ADDR[/PREFIX]} (IPv4 or IPv6) or Pen's C{IPV4 NETMASK}; a bare address is one host.

    Host bits below the prefix are ignored (C{127.0.0.9/8} is C{127.0.0.0/8}).
    """
    value = text.strip()
    if value.startswith("[") and "]" in value:
        inner, _, rest = value[1:].partition("]")
        value = inner + rest
    if mask is not None:
        if "/" in value or ":" in value:
            raise AclError(f"invalid ACL address {text!r} {mask!r}: a netmask goes with IPv4 only")
        value = f"{value}/{mask}"
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise AclError(
            f"invalid ACL address {text!r}: expected an IPv4 or IPv6 ADDR[/PREFIX]"
        ) from None


def as_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """
    The client's address as an IP address, or None when it is not one (a unix socket).

    An IPv4-mapped IPv6 address (C{::ffff:127.0.0.2}, what a dual-stack socket reports for an
    IPv4 client) is checked as the IPv4 address it carries; a zone suffix is dropped.
    """
    try:
        parsed = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


class AccessList:
    """An ordered list of entries; L{permits} answers for one address."""

    def __init__(self, entries: Iterable[AclEntry] = ()) -> None:
        self._entries: list[AclEntry] = list(entries)

    def __iter__(self) -> Iterator[AclEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: AclEntry) -> None:
        """Append an entry (it is checked after every entry already there)."""
        self._entries.append(entry)

    def clear(self) -> None:
        """Remove every entry: the list then permits everyone (Pen's C{no acl N})."""
        self._entries.clear()

    def permits(self, address: str) -> bool:
        """
        Whether C{address} (an IPv4 or IPv6 literal) may connect.

        A non-IP client (a unix socket) matches no entry, so it gets the list's default.
        """
        entries = self._entries
        if not entries:
            return True
        parsed = as_address(address)
        if parsed is not None:
            for entry in entries:
                if entry.matches(parsed):
                    return entry.permit
        return not entries[-1].permit


@dataclass(frozen=True)
class AclCommand:
    """A parsed C{N permit|deny ADDR[/PREFIX]}."""

    number: int
    entry: AclEntry


def parse_acl_number(text: str) -> int:
    """An access-list number 0-9."""
    value = text.strip()
    if not is_digits(value) or not 0 <= int(value) < ACL_COUNT:
        raise AclError(f"invalid access list number {text!r}: expected 0 to {ACL_COUNT - 1}")
    return int(value)


def parse_acl(text: str) -> AclCommand:
    """Parse C{N permit|deny ADDR[/PREFIX]} or C{N permit|deny IPV4 NETMASK}."""
    words = text.split()
    if len(words) not in (3, 4):
        raise AclError(f"invalid ACL {text!r}: expected {ACL_FORM}")
    number = parse_acl_number(words[0])
    action = words[1].lower()
    if action not in ("permit", "deny"):
        raise AclError(f"invalid ACL {text!r}: expected permit or deny, got {words[1]!r}")
    network = parse_network(words[2], words[3] if len(words) == 4 else None)
    return AclCommand(number, AclEntry(action == "permit", network))


class AclTable:
    """Pen's ten access lists, numbered 0-9, all empty (permit everyone) at first."""

    def __init__(self) -> None:
        self.lists: list[AccessList] = [AccessList() for _ in range(ACL_COUNT)]

    def __getitem__(self, number: int) -> AccessList:
        return self.lists[number]

    def apply(self, command: AclCommand) -> None:
        """Append the command's entry to its list."""
        self.lists[command.number].add(command.entry)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> AclTable:
        """A table from C{--acl} values, in order; L{AclError} on the first bad one."""
        table = cls()
        for text in texts:
            table.apply(parse_acl(text))
        return table
