# -*- test-case-name: tests.edges.test_acl -*-
"""
Tests of Pen's access lists: first match, the default after the last entry, IPv4 and IPv6.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.acl import AccessList, AclError, AclTable, parse_acl


def acl(*lines: str) -> AccessList:
    """One access list from C{permit|deny ADDR} lines."""
    table = AclTable.from_texts(f"1 {line}" for line in lines)
    return table[1]


class MatchTests(SynchronousTestCase):
    """Which clients a list lets in."""

    def test_empty_permits_everyone(self) -> None:
        """An empty list permits every client (Pen's 'no acl N')."""
        self.assertTrue(AccessList().permits("127.0.0.9"))
        self.assertTrue(AccessList().permits("::1"))

    def test_first_match_decides(self) -> None:
        """The first matching entry wins over later ones."""
        listed = acl("deny 127.0.0.2", "permit 127.0.0.0/8")
        self.assertFalse(listed.permits("127.0.0.2"))
        self.assertTrue(listed.permits("127.0.0.3"))

    def test_permit_list_denies_the_rest(self) -> None:
        """When nothing matches, a list ending in permit denies (measured against Pen)."""
        listed = acl("permit 127.0.0.2")
        self.assertTrue(listed.permits("127.0.0.2"))
        self.assertFalse(listed.permits("127.0.0.1"))

    def test_deny_list_permits_the_rest(self) -> None:
        """When nothing matches, a list ending in deny permits (measured against Pen)."""
        listed = acl("deny 127.0.0.2")
        self.assertFalse(listed.permits("127.0.0.2"))
        self.assertTrue(listed.permits("127.0.0.1"))

    def test_ipv6_prefix(self) -> None:
        """IPv6 entries match by prefix length."""
        listed = acl("permit ::1/128", "permit 2001:db8::/32")
        self.assertTrue(listed.permits("::1"))
        self.assertTrue(listed.permits("2001:db8:5::7"))
        self.assertFalse(listed.permits("2001:db9::1"))

    def test_families_do_not_mix(self) -> None:
        """An IPv4 client never matches an IPv6 entry, nor the reverse."""
        listed = acl("permit ::/0")
        self.assertFalse(listed.permits("127.0.0.1"))
        self.assertTrue(listed.permits("::1"))

    def test_ipv4_mapped_checked_as_ipv4(self) -> None:
        """A dual-stack socket's ::ffff:a.b.c.d client is checked as a.b.c.d."""
        listed = acl("deny 127.0.0.2")
        self.assertFalse(listed.permits("::ffff:127.0.0.2"))

    def test_pen_netmask_form(self) -> None:
        """Pen's 'ADDR MASK' form is the same as ADDR/PREFIX."""
        listed = acl("permit 127.0.0.0 255.255.255.0")
        self.assertTrue(listed.permits("127.0.0.200"))
        self.assertFalse(listed.permits("127.0.1.1"))

    def test_non_ip_client_gets_default(self) -> None:
        """A unix-socket client matches no entry and gets the list's default."""
        self.assertFalse(acl("permit 127.0.0.1").permits("unix"))
        self.assertTrue(acl("deny 127.0.0.1").permits("unix"))

    def test_host_bits_ignored(self) -> None:
        """127.0.0.9/8 means 127.0.0.0/8."""
        self.assertTrue(acl("permit 127.0.0.9/8").permits("127.200.0.1"))

    def test_clear(self) -> None:
        """A cleared list permits everyone again."""
        listed = acl("permit 127.0.0.2")
        listed.clear()
        self.assertTrue(listed.permits("127.0.0.1"))


class ParseTests(SynchronousTestCase):
    """Bad entries are refused with one line naming the value."""

    def test_bad_number(self) -> None:
        """Lists are numbered 0 to 9."""
        e = self.assertRaises(AclError, parse_acl, "10 permit 127.0.0.1")
        self.assertIn("'10'", str(e))

    def test_bad_action(self) -> None:
        """Only permit and deny."""
        e = self.assertRaises(AclError, parse_acl, "1 allow 127.0.0.1")
        self.assertIn("permit or deny", str(e))

    def test_bad_address(self) -> None:
        """An address that is not IPv4 or IPv6 is refused."""
        e = self.assertRaises(AclError, parse_acl, "1 permit db.example")
        self.assertIn("'db.example'", str(e))

    def test_netmask_with_ipv6(self) -> None:
        """A netmask goes with IPv4 only."""
        self.assertRaises(AclError, parse_acl, "1 permit ::1 ffff::")

    def test_wrong_word_count(self) -> None:
        """Too few words name the expected form."""
        e = self.assertRaises(AclError, parse_acl, "1 permit")
        self.assertIn("permit|deny", str(e))

    def test_format_round_trip(self) -> None:
        """An entry formats as Pen would write it."""
        command = parse_acl("3 deny 2001:db8::1/64")
        self.assertEqual(command.number, 3)
        self.assertEqual(command.entry.format(), "deny 2001:db8::/64")
