# -*- test-case-name: tests.penctl.test_commands -*-
"""
Tests of the control-language parser: every command, every malformed form, and garbage.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import AdminState
from penbal.edges.acl import AclEntry
from penbal.optiontypes import is_digits, number, parse_float, parse_int
from penbal.penctl import commands
from penbal.penctl.commands import (
    AddAclEntry,
    AddServer,
    BadCommand,
    Blank,
    ClearAcl,
    ClearServers,
    Command,
    Edit,
    Exit,
    Ignored,
    Prompt,
    Query,
    Quit,
    Reload,
    RemoveServer,
    SetEmergency,
    SetHttp,
    SetPolicy,
    SetSelectionFlag,
    SetServer,
    SetServerState,
    SetStubborn,
    SetValue,
    ShowHelp,
    ShowMode,
    ShowRecent,
    ShowServer,
    ShowServers,
    ShowStatus,
    ShowValue,
    Unsupported,
    Write,
    parse_command,
)

#: Unicode digits that str.isdigit accepts: superscript two (int() refuses it), Arabic-Indic
#: one and three (int() reads them as 1 and 3), a fullwidth 5, and a Devanagari 7.
UNICODE_DIGITS = ("\u00b2", "\u0661", "\u0663", "\uff15", "\u096d")
SUP2, ARABIC1 = UNICODE_DIGITS[:2]

GOOD: list[tuple[str, Command]] = [
    ("servers", ShowServers()),
    ("server 3", ShowServer(3)),
    ("server 0 up", SetServerState(0, AdminState.UP)),
    ("server 1 down", SetServerState(1, AdminState.DOWN)),
    ("server 2 drain", SetServerState(2, AdminState.DRAIN)),
    ("server 1 max 5", SetServer(1, maxc=5)),
    ("server 1 hard 9 weight 3 prio 2", SetServer(1, hard=9, weight=3, prio=2)),
    ("server 0 acl 1 address 127.10.0.5 port 3307 max 0 hard 0",
     SetServer(0, host="127.10.0.5", port=3307, maxc=0, hard=0, acl=1)),
    ("server 2 acl 0 address ::1 port 19002 max 50 hard 60 weight 3 prio 1",
     SetServer(2, host="::1", port=19002, maxc=50, hard=60, weight=3, prio=1, acl=0)),
    ("server 0 address [::1]", SetServer(0, host="::1")),
    ("server 0 address db1.example", SetServer(0, host="db1.example")),
    ("server 4 blacklist 2.5", SetServer(4, blacklist=2.5)),
    ("add 127.0.0.1:3306", AddServer(BackendSpec("127.0.0.1", 3306))),
    ("add [::1]:3306:10:20:3:1", AddServer(BackendSpec("::1", 3306, 10, 20, 3, 1))),
    ("remove 2", RemoveServer(2)),
    ("remove 2 now", RemoveServer(2, now=True)),
    ("no servers", ClearServers()),
    ("status", ShowStatus("html")),
    ("status json", ShowStatus("json")),
    ("status text", ShowStatus("text")),
    ("mode", ShowMode()),
    ("policy", ShowValue("policy")),
    ("policy leastconn", SetPolicy("leastconn")),
    ("policy sticky hash", SetPolicy("sticky", "hash")),
    ("policy galera-writer", SetPolicy("galera-writer")),
    ("policy my_site.policy-2", SetPolicy("my_site.policy-2")),
    ("roundrobin", SetSelectionFlag("roundrobin", True)),
    ("no roundrobin", SetSelectionFlag("roundrobin", False)),
    ("hash", SetSelectionFlag("hash", True)),
    ("no hash", SetSelectionFlag("hash", False)),
    ("weight", SetSelectionFlag("weight", True)),
    ("no weight", SetSelectionFlag("weight", False)),
    ("prio", SetSelectionFlag("prio", True)),
    ("no prio", SetSelectionFlag("prio", False)),
    ("stubborn", SetStubborn(True)),
    ("no stubborn", SetStubborn(False)),
    ("blacklist", ShowValue("blacklist")),
    ("blacklist 10", SetValue("blacklist", 10.0)),
    ("timeout", ShowValue("timeout")),
    ("timeout 0.5", SetValue("timeout", 0.5)),
    ("tracking", ShowValue("tracking")),
    ("tracking 60", SetValue("tracking", 60.0)),
    ("clients_max", ShowValue("clients_max")),
    ("clients_max 4096", SetValue("clients_max", 4096)),
    ("conn_max", ShowValue("conn_max")),
    ("conn_max 1000", SetValue("conn_max", 1000)),
    ("client_acl", ShowValue("client_acl")),
    ("client_acl 2", SetValue("client_acl", 2)),
    ("control_acl", ShowValue("control_acl")),
    ("control_acl 9", SetValue("control_acl", 9)),
    ("emergency", ShowValue("emergency")),
    ("emergency 127.10.0.9:3306", SetEmergency(BackendSpec("127.10.0.9", 3306))),
    ("no emergency", SetEmergency(None)),
    ("acl 1 permit 127.0.0.0 255.0.0.0",
     AddAclEntry(1, AclEntry(True, ipaddress.ip_network("127.0.0.0/8")))),
    ("acl 1 deny 127.0.0.1",
     AddAclEntry(1, AclEntry(False, ipaddress.ip_network("127.0.0.1/32")))),
    ("acl 2 permit 127.168.0.0/16",
     AddAclEntry(2, AclEntry(True, ipaddress.ip_network("127.168.0.0/16")))),
    ("acl 3 deny ::1/64", AddAclEntry(3, AclEntry(False, ipaddress.ip_network("::/64")))),
    ("no acl 3", ClearAcl(3)),
    ("recent", ShowRecent(300.0)),
    ("recent 60", ShowRecent(60.0)),
    ("write", Write(None)),
    ("write /etc/penbal.cfg", Write("/etc/penbal.cfg")),
    ("write -", Write("-")),
    ("reload", Reload()),
    ("exit", Exit()),
    ("help", ShowHelp()),
    ("prompt", Prompt()),
    ("quit", Quit()),
    ("listen", ShowValue("listen")),
    ("control", ShowValue("control")),
    ("pid", ShowValue("pid")),
    ("log", ShowValue("log")),
    ("http", SetHttp(True)),
    ("no http", SetHttp(False)),
    ("log /var/log/pen.log", Unsupported(
        "log /var/log/pen.log",
        "log FILE is not supported: the access log is set at start-up (--access-log)")),
    ("web_stats /tmp/s.html", Unsupported(
        "web_stats /tmp/s.html",
        "web_stats FILE is not supported: penbal serves its status with --http")),
    ("debug 1", Unsupported("debug 1", "debug N is not supported: use twist --log-level debug")),
    ("ascii", Unsupported("ascii", "ascii (Pen's debugging dumps) is not supported")),
    ("tcp_fastclose both", Unsupported(
        "tcp_fastclose both", "tcp_fastclose both is not supported: penbal relays half-closes")),
    ("no ascii", Ignored("no ascii")),
    ("debug 0", Ignored("debug 0")),
    ("tcp_fastclose off", Ignored("tcp_fastclose off")),
    ("", Blank()),
    ("   \t ", Blank()),
    ("# a comment", Blank()),
]

BAD: list[tuple[str, str]] = [
    ("frobnicate", "unknown command 'frobnicate'"),
    ("servers 1", "wrong number of arguments to 'servers'"),
    ("server", "missing server number"),
    ("server x", "invalid server number 'x'"),
    ("server -1", "invalid server number '-1'"),
    ("server 1 max", "'max' needs a value"),
    ("server 1 max -3", "invalid max '-3'"),
    ("server 1 max 1.5", "invalid max '1.5'"),
    ("server 1 max 3 max 4", "'max' given twice"),
    ("server 1 colour blue", "unknown setting 'colour'"),
    ("server 1 port 0", "invalid port '0'"),
    ("server 1 port 70000", "invalid port '70000'"),
    ("server 1 address not/a/host", "invalid host"),
    ("server 1 acl 10", "invalid access list number '10'"),
    ("server 1 blacklist soon", "invalid blacklist time 'soon'"),
    ("server 1 drain now", "expected nothing after 'drain'"),
    ("add", "wrong number of arguments to 'add'"),
    ("add 127.0.0.1", "has no port"),
    ("add 127.0.0.1:99999", "invalid port '99999'"),
    ("add 127.0.0.1:3306:x", "invalid MAXC 'x'"),
    ("add [::1:3306", "unclosed '['"),
    ("add a:1 b:2", "wrong number of arguments to 'add'"),
    ("remove", "wrong number of arguments to 'remove'"),
    ("remove x", "invalid server number 'x'"),
    ("remove 1 later", "expected 'now'"),
    ("status xml", "unknown form 'xml'"),
    ("mode x", "wrong number of arguments to 'mode'"),
    ("policy a b c", "wrong number of arguments to 'policy'"),
    ("policy roundrobin hash", "only sticky takes"),
    ("policy no-such!", "invalid policy name"),
    ("policy -leading", "invalid policy name"),
    ("policy 2fast", "invalid policy name"),
    ("hash 1", "wrong number of arguments to 'hash'"),
    ("blacklist -1", "invalid blacklist (seconds) '-1'"),
    ("blacklist 1 2", "wrong number of arguments to 'blacklist'"),
    ("timeout 0", "invalid timeout (seconds) '0'"),
    ("timeout nan", "invalid timeout (seconds) 'nan'"),
    ("timeout inf", "invalid timeout (seconds) 'inf'"),
    ("tracking 1e999", "invalid tracking (seconds)"),
    ("clients_max 0", "invalid clients_max (clients) '0'"),
    ("conn_max 2.5", "invalid conn_max (connections) '2.5'"),
    ("conn_max +5", "invalid conn_max (connections) '+5'"),
    ("client_acl 10", "invalid access list number '10'"),
    ("control_acl x", "invalid access list number 'x'"),
    ("emergency a b", "wrong number of arguments to 'emergency'"),
    ("emergency 127.10.0.9", "has no port"),
    ("acl 1 permit", "wrong number of arguments to 'acl'"),
    ("acl 10 permit 127.12.3.4", "invalid access list number '10'"),
    ("acl 1 allow 127.12.3.4", "expected permit or deny"),
    ("acl 1 permit 127.12.3.999", "invalid ACL address"),
    ("acl 1 permit ::1 ffff::", "a netmask goes with IPv4 only"),
    ("acl 1 permit country SE", "GeoIP"),
    ("no", "'no' needs a setting"),
    ("no colour", "unknown setting 'colour' after 'no'"),
    ("no acl", "wrong number of arguments to 'no'"),
    ("no acl x", "invalid access list number 'x'"),
    ("no hash please", "wrong number of arguments to 'no'"),
    ("recent -5", "invalid recent (seconds) '-5'"),
    ("write a b", "write: expected one FILE"),
    ("reload now", "wrong number of arguments to 'reload'"),
    ("exit 1", "wrong number of arguments to 'exit'"),
    ("log a b", "wrong number of arguments to 'log'"),
    ("pid 3", "wrong number of arguments to 'pid'"),
    ("debug x", "invalid debug level 'x'"),
    ("debug", "wrong number of arguments to 'debug'"),
    ("ascii 1", "wrong number of arguments to 'ascii'"),
    ("web_stats", "wrong number of arguments to 'web_stats'"),
    ("tcp_fastclose sometimes", "expected off, in, out or both, got 'sometimes'"),
    ("http on", "wrong number of arguments to 'http'"),
    ("no http please", "wrong number of arguments to 'no'"),
    # Numbers are ASCII digits only: str.isdigit() takes these, int() fails on or misreads them.
    (f"client_acl {SUP2}", f"invalid access list number {SUP2!r}"),
    (f"server 0 acl {SUP2}", f"invalid access list number {SUP2!r}"),
    (f"no acl {SUP2}", f"invalid access list number {SUP2!r}"),
    (f"acl {ARABIC1} permit 127.0.0.1", f"invalid access list number {ARABIC1!r}"),
    (f"add 127.0.0.1:{SUP2}", f"invalid port {SUP2!r}"),
    (f"add 127.0.0.1:{ARABIC1}", f"invalid port {ARABIC1!r}"),
    (f"add 127.0.0.1:3306:{SUP2}", f"invalid MAXC {SUP2!r}"),
    (f"emergency 127.0.0.1:{ARABIC1}", f"invalid port {ARABIC1!r}"),
    (f"control_acl {ARABIC1}", f"invalid access list number {ARABIC1!r}"),
    (f"server {ARABIC1} drain", f"invalid server number {ARABIC1!r}"),
    (f"server 0 port {ARABIC1}", f"invalid port {ARABIC1!r}"),
    (f"server 0 max {ARABIC1}", f"invalid max {ARABIC1!r}"),
    (f"remove {SUP2}", f"invalid server number {SUP2!r}"),
    (f"conn_max {ARABIC1}", f"invalid conn_max (connections) {ARABIC1!r}"),
    (f"timeout {ARABIC1}", f"invalid timeout (seconds) {ARABIC1!r}"),
    (f"debug {ARABIC1}", f"invalid debug level {ARABIC1!r}"),
    ("timeout 1_0", "invalid timeout (seconds) '1_0'"),
]


class ParseGoodTests(SynchronousTestCase):
    """Every command of the language parses to its command object."""

    def test_every_command(self) -> None:
        """Each well-formed line gives the expected command."""
        for line, expected in GOOD:
            self.assertEqual(parse_command(line), expected, line)

    def test_bytes(self) -> None:
        """A line may be given as bytes (from the socket)."""
        self.assertEqual(parse_command(b"server 1 drain"), SetServerState(1, AdminState.DRAIN))

    def test_surrounding_whitespace(self) -> None:
        """Spaces, tabs and a carriage return around and between words do not matter."""
        self.assertEqual(parse_command("  server\t1   max 3 \r"), SetServer(1, maxc=3))

    def test_edits_and_queries(self) -> None:
        """Commands that change state are edits; the others are queries."""
        for line, command in GOOD:
            changes = isinstance(command, Edit)
            self.assertEqual(changes, not isinstance(command, Query), line)
        self.assertIsInstance(parse_command("server 1 drain"), Edit)
        self.assertIsInstance(parse_command("servers"), Query)


class ParseBadTests(SynchronousTestCase):
    """Every malformed form gives one error line naming the problem."""

    def test_every_malformed_form(self) -> None:
        """Each bad line is a BadCommand whose one-line message names what was wrong."""
        for line, fragment in BAD:
            parsed = parse_command(line)
            self.assertIsInstance(parsed, BadCommand, line)
            assert isinstance(parsed, BadCommand)
            self.assertIn(fragment, parsed.message, line)
            self.assertNotIn("\n", parsed.message, line)

    def test_long_word_is_shortened(self) -> None:
        """An enormous unknown word is not echoed whole."""
        parsed = parse_command("x" * 5000)
        assert isinstance(parsed, BadCommand)
        self.assertLess(len(parsed.message), 120)

    def test_invalid_utf8(self) -> None:
        """Bytes that are not UTF-8 are an unknown command, not an exception."""
        self.assertIsInstance(parse_command(b"\xff\xfe servers"), BadCommand)


class AsciiNumberTests(SynchronousTestCase):
    """penbal.optiontypes reads every number: ASCII digits only."""

    def test_digits(self) -> None:
        """is_digits: one or more of 0-9, nothing else (str.isdigit takes Unicode digits)."""
        self.assertTrue(is_digits("0123456789"))
        for text in ("", " 1", "1 ", "+1", "-1", "1.0", "1_0", *UNICODE_DIGITS):
            self.assertFalse(is_digits(text), repr(text))
        self.assertTrue(all(text.isdigit() for text in UNICODE_DIGITS))  # what it guards

    def test_whole_numbers(self) -> None:
        """parse_int: ASCII digits (and a sign when asked); anything else is a ValueError."""
        self.assertEqual((parse_int("0"), parse_int("0042"), parse_int("-3", signed=True)),
                         (0, 42, -3))
        for text in ("-3", "+3", "1_000", "1.0", " 7", *UNICODE_DIGITS):
            with self.assertRaises(ValueError, msg=repr(text)):
                parse_int(text)

    def test_decimal_numbers(self) -> None:
        """parse_float: finite ASCII decimals only (no nan, inf, underscores or 1e999)."""
        for text, value in (("3", 3.0), ("0.25", 0.25), (".5", 0.5), ("5.", 5.0),
                            ("-1.5", -1.5), ("1e3", 1000.0), ("2E-1", 0.2)):
            self.assertEqual(parse_float(text), value, text)
        for text in ("nan", "inf", "-inf", "infinity", "1e999", "1_0", "", ".", "e3",
                     "0x10", f"1{ARABIC1}", *UNICODE_DIGITS):
            with self.assertRaises(ValueError, msg=repr(text)):
                parse_float(text)

    def test_option_coercer(self) -> None:
        """Command-line options refuse Unicode digits with their one-line message."""
        coerce = number(int, 1, "--rise")
        self.assertEqual(coerce("3"), 3)
        with self.assertRaises(ValueError) as caught:
            coerce(ARABIC1)
        self.assertEqual(str(caught.exception),
                         f"expected a number >= 1 for --rise, got {ARABIC1!r}")
        with self.assertRaises(ValueError):
            number(float, 0, "--timeout")("nan")


def parsed_cleanly(case: SynchronousTestCase, line: str | bytes) -> None:
    """C{line} parses to a command, or to a BadCommand that is not the parser's own failure."""
    result = parse_command(line)
    case.assertIsInstance(result, Command | BadCommand)
    if isinstance(result, BadCommand):
        case.assertFalse(result.internal, f"{line!r}: {result.message}")
        case.assertNotIn("please report it", result.message, repr(line))


class GarbageTests(SynchronousTestCase):
    """Whatever arrives, the parser answers with a command or a BadCommand of its own."""

    def test_internal_failure_is_marked(self) -> None:
        """A bug in a command's parser is caught, and marked so the fuzz tests see it."""

        def broken(words: list[str]) -> Command:
            raise ValueError("a bug")

        parsers: dict[str, Callable[[list[str]], Command]] = dict(commands.PARSERS)
        parsers["servers"] = broken
        self.patch(commands, "PARSERS", parsers)
        result = parse_command("servers")
        self.assertEqual(
            result,
            BadCommand("cannot parse this line (ValueError): please report it", internal=True),
        )
        with self.assertRaises(self.failureException):
            parsed_cleanly(self, "servers")

    @settings(max_examples=400, deadline=None)
    @given(st.binary(max_size=200))
    def test_random_bytes(self, data: bytes) -> None:
        """Random bytes never raise, and never reach the parser's catch-all."""
        parsed_cleanly(self, data)

    @settings(max_examples=600, deadline=None)
    @given(
        st.sampled_from(sorted(commands.PARSERS)),
        st.lists(
            st.one_of(
                st.sampled_from(
                    [*UNICODE_DIGITS, "0", "9", "10", "-1", "1.5", "1e9", "nan", "permit",
                     "deny", "now", "address", "port", "max", "acl", "blacklist", "http",
                     "127.0.0.1", "[::1]", "::1", "off", "both"]
                ),
                st.builds(lambda host, port: f"{host}:{port}",
                          st.sampled_from(["127.0.0.1", "[::1]", "db1", ""]),
                          st.sampled_from(["1", "3306", "", *UNICODE_DIGITS, "1:2:\u00b2"])),
                st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1,
                        max_size=4),
            ),
            max_size=6,
        ),
    )
    def test_every_command_with_odd_numbers(self, command: str, words: list[str]) -> None:
        """Each command word, followed by digits of any script, never reaches the catch-all."""
        parsed_cleanly(self, " ".join([command, *words]))

    @settings(max_examples=400, deadline=None)
    @given(
        st.lists(
            st.one_of(
                st.sampled_from(
                    ["server", "add", "remove", "acl", "no", "status", "policy", "blacklist",
                     "timeout", "conn_max", "write", "recent", "emergency", "drain", "now",
                     "permit", "deny", "max", "port", "address", "0", "1", "-1", "9", "1e9",
                     "nan", "[::1]:1", "127.0.0.1:3306", "127.12.3.4", "255.0.0.0", ":", "[", ""]
                ),
                st.text(max_size=12),
            ),
            max_size=8,
        )
    )
    def test_random_commands(self, words: list[str]) -> None:
        """Command-like word salad never raises, and never reaches the catch-all."""
        parsed_cleanly(self, " ".join(words))
