# -*- test-case-name: tests.edges.test_forwarded -*-
"""
Tests of the HTTP request-head rewriter: every request of a kept-alive stream gets the
headers, bodies pass untouched, and anything it cannot frame ends the connection.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.forwarded import ForwardedRewriter

ADDED = b"X-Forwarded-For: 127.0.0.5\r\nX-Forwarded-Proto: http\r\n"


class Recorder:
    """
    A rewriter for client 127.0.0.5 that records why it failed and what it sent to the
    backend from the response side (bytes held while an upgrade awaited its answer).
    """

    def __init__(self, proto: str = "http", max_head: int = 65536) -> None:
        self.failures: list[str] = []
        self.released: list[bytes] = []
        self.rewriter = ForwardedRewriter("127.0.0.5", proto, self.failures.append, max_head,
                                          send=self.released.append)

    def feed(self, *chunks: bytes) -> bytes:
        return b"".join(self.rewriter.feed(chunk) for chunk in chunks)

    def answer(self, *chunks: bytes) -> bytes:
        """The backend sends C{chunks}; return what that released towards the backend."""
        before = len(self.released)
        for chunk in chunks:
            self.rewriter.response(chunk)
        return b"".join(self.released[before:])


def get(path: str = "/", extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: h\r\n".encode() + extra + b"\r\n"


def expect(path: str = "/", extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: h\r\n".encode() + extra + ADDED + b"\r\n"


CHUNKED = (
    b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nGET /\r\n"
    b"13\r\nGET /x HTTP/1.1\r\n\r\n\r\n"
    b"0\r\nTrailer-A: 1\r\n\r\n"
)
CHUNKED_OUT = (
    b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n" + ADDED + b"\r\n"
    b"5;ext=1\r\nGET /\r\n"
    b"13\r\nGET /x HTTP/1.1\r\n\r\n\r\n"
    b"0\r\nTrailer-A: 1\r\n\r\n"
)
STREAM = (
    get("/a")
    + b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\nGET /no HTTP/1.1\r\n\r\n"
    + CHUNKED
    + get("/c")
)
STREAM_OUT = (
    expect("/a")
    + b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n" + ADDED
    + b"\r\nGET /no HTTP/1.1\r\n\r\n"
    + CHUNKED_OUT
    + expect("/c")
)


class RewriteTests(SynchronousTestCase):
    """Well-formed streams."""

    def test_one_request(self) -> None:
        """The headers are added at the end of the head."""
        self.assertEqual(Recorder().feed(get()), expect())

    def test_proto_https(self) -> None:
        """Behind TLS the protocol is https."""
        out = Recorder("https").feed(get())
        self.assertIn(b"X-Forwarded-Proto: https\r\n", out)

    def test_pipelined_requests(self) -> None:
        """Three pipelined requests in one read each get the headers."""
        out = Recorder().feed(get("/1") + get("/2") + get("/3"))
        self.assertEqual(out, expect("/1") + expect("/2") + expect("/3"))

    def test_kept_alive_requests_in_separate_reads(self) -> None:
        """A later request on the same connection is rewritten too."""
        recorder = Recorder()
        self.assertEqual(recorder.feed(get("/1")), expect("/1"))
        self.assertEqual(recorder.feed(get("/2")), expect("/2"))
        self.assertEqual(recorder.rewriter.requests, 2)

    def test_client_headers_replaced(self) -> None:
        """X-Forwarded-For and -Proto sent by the client are removed (they could be forged)."""
        out = Recorder().feed(
            get(extra=b"X-Forwarded-For: 127.0.9.9\r\nx-forwarded-proto: https\r\n")
        )
        self.assertEqual(out, expect())

    def test_body_not_rewritten(self) -> None:
        """A Content-Length body that looks like a request passes untouched."""
        self.assertEqual(Recorder().feed(STREAM), STREAM_OUT)

    def test_chunked_with_trailers(self) -> None:
        """A chunked body with extensions and trailers passes; the next head is found."""
        self.assertEqual(Recorder().feed(CHUNKED + get("/n")), CHUNKED_OUT + expect("/n"))

    def test_byte_by_byte(self) -> None:
        """Heads, bodies and chunks split into single bytes give the same result."""
        recorder = Recorder()
        out = recorder.feed(*(STREAM[i : i + 1] for i in range(len(STREAM))))
        self.assertEqual(out, STREAM_OUT)
        self.assertEqual(recorder.failures, [])

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
    def test_any_split(self, cuts: list[int]) -> None:
        """However the stream is cut into reads, the output is the same."""
        points = [0, *sorted(cuts), len(STREAM)]
        chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
        self.assertEqual(Recorder().feed(*chunks), STREAM_OUT)

    def test_leading_empty_lines(self) -> None:
        """Empty lines before a request line are dropped, as servers do."""
        self.assertEqual(Recorder().feed(b"\r\n\r\n" + get()), expect())

    def test_http10(self) -> None:
        """HTTP/1.0 requests are rewritten too."""
        out = Recorder().feed(b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(out, b"GET / HTTP/1.0\r\n" + ADDED + b"\r\n")

    def test_identical_content_lengths(self) -> None:
        """Repeated but equal Content-Length values are accepted."""
        recorder = Recorder()
        recorder.feed(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")
        self.assertEqual(recorder.failures, [])


class FailClosedTests(SynchronousTestCase):
    """What cannot be framed with certainty ends the connection; nothing more is sent."""

    def assertFails(self, data: bytes, why: str) -> None:
        recorder = Recorder(max_head=1024)
        out = recorder.feed(data)
        self.assertEqual(len(recorder.failures), 1, recorder.failures)
        self.assertIn(why, recorder.failures[0])
        self.assertEqual(recorder.feed(get()), b"")
        self.assertNotIn(b"EVIL", out)

    def test_both_lengths(self) -> None:
        """Content-Length with Transfer-Encoding (request smuggling) fails."""
        self.assertFails(
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\nEVIL",
            "both Transfer-Encoding and Content-Length",
        )

    def test_differing_lengths(self) -> None:
        """Two different Content-Length values fail."""
        self.assertFails(
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nEVIL",
            "invalid Content-Length",
        )

    def test_negative_length(self) -> None:
        """A Content-Length that is not a number fails."""
        self.assertFails(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length")

    def test_unknown_coding(self) -> None:
        """A final coding other than chunked fails."""
        self.assertFails(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nEVIL",
            "unsupported Transfer-Encoding",
        )

    def test_bare_lf(self) -> None:
        """A bare LF inside the head fails."""
        self.assertFails(b"GET / HTTP/1.1\nHost: h\r\nX: EVIL\r\n\r\n", "bare CR or LF")

    def test_not_http(self) -> None:
        """A stream that is not HTTP/1.x fails at its first head."""
        self.assertFails(b"\x16\x03\x01 EVIL\r\n\r\n", "not an HTTP/1.x request line")

    def test_http2_preface(self) -> None:
        """The HTTP/2 preface is not HTTP/1.x."""
        self.assertFails(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "not an HTTP/1.x request line")

    def test_folded_header(self) -> None:
        """Obsolete line folding fails."""
        self.assertFails(b"GET / HTTP/1.1\r\nX-A: 1\r\n  EVIL\r\n\r\n", "malformed header line")

    def test_space_before_colon(self) -> None:
        """A header name with a space before the colon fails."""
        self.assertFails(b"GET / HTTP/1.1\r\nContent-Length : 4\r\n\r\nEVIL", "malformed header")

    def test_head_too_big(self) -> None:
        """A head larger than the limit fails before the whole head is in."""
        self.assertFails(b"GET / HTTP/1.1\r\nX: " + b"a" * 2000, "request head over 1024 bytes")

    def test_bad_chunk_size(self) -> None:
        """A chunk size that is not hexadecimal fails."""
        self.assertFails(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nEVIL",
            "invalid chunk size",
        )

    def test_chunk_without_crlf(self) -> None:
        """Chunk data not followed by CRLF fails."""
        self.assertFails(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXXEVIL",
            "not followed by CRLF",
        )


UPGRADE = get("/ws", b"Connection: Upgrade\r\nUpgrade: websocket\r\n")
#: An upgrade request with a 4-byte body.
UPGRADE_WITH_BODY = (b"POST /ws HTTP/1.1\r\nContent-Length: 4\r\nConnection: upgrade\r\n"
                     b"Upgrade: x\r\n\r\n")
CONNECT = b"CONNECT db:3306 HTTP/1.1\r\nHost: db\r\n\r\n"
FORGED = b"GET /forged HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 127.6.6.6\r\n\r\n"
FORGED_OUT = b"GET /forged HTTP/1.1\r\nHost: h\r\n" + ADDED + b"\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


PIPELINED_ANSWERS = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\n\r\n\r\n\r\n0\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"  # to HEAD: no body
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nno!"
)


class UpgradeTests(SynchronousTestCase):
    """
    After Upgrade or CONNECT the stream passes untouched only once the backend agreed; what
    the client sent meanwhile is held, and rewritten as HTTP if the backend said no.
    """

    def test_upgrade_agreed(self) -> None:
        """After 101 the held bytes and the rest pass untouched, both ways."""
        recorder = Recorder()
        self.assertEqual(recorder.feed(UPGRADE, b"\x81\x05hello"), expect("/ws",
                         b"Connection: Upgrade\r\nUpgrade: websocket\r\n"))
        self.assertEqual(recorder.answer(SWITCHING + b"\x81\x02hi"), b"\x81\x05hello")
        self.assertTrue(recorder.rewriter.tunnel)
        self.assertEqual(recorder.feed(FORGED), FORGED)  # websocket bytes now, not HTTP
        recorder.answer(b"not http at all\r\n\r\n")
        self.assertEqual(recorder.failures, [])

    def test_upgrade_declined(self) -> None:
        """A 200 to an Upgrade: the held bytes are requests again, forged headers removed."""
        recorder = Recorder()
        recorder.feed(UPGRADE + FORGED)
        self.assertFalse(recorder.rewriter.tunnel)
        self.assertEqual(recorder.answer(OK), FORGED_OUT)
        self.assertEqual(recorder.feed(FORGED), FORGED_OUT)
        self.assertEqual(recorder.failures, [])

    def test_upgrade_declined_in_pieces(self) -> None:
        """The answer split anywhere, byte by byte, gives the same decision."""
        recorder = Recorder()
        recorder.feed(UPGRADE, FORGED)
        released = recorder.answer(*(OK[i : i + 1] for i in range(len(OK))))
        self.assertEqual(released, FORGED_OUT)

    def test_connect_agreed(self) -> None:
        """A 2xx to CONNECT opens the tunnel; the held bytes pass as they are."""
        recorder = Recorder()
        out = recorder.feed(CONNECT + b"\x00binary " + FORGED)
        self.assertEqual(out.count(b"X-Forwarded-For"), 1)
        self.assertNotIn(b"binary", out)
        self.assertEqual(recorder.answer(b"HTTP/1.1 200 Connection established\r\n\r\n"),
                         b"\x00binary " + FORGED)
        self.assertEqual(recorder.feed(FORGED), FORGED)

    def test_connect_declined(self) -> None:
        """A 403 to CONNECT: rewriting goes on."""
        recorder = Recorder()
        recorder.feed(CONNECT, FORGED)
        released = recorder.answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(released, FORGED_OUT)

    def test_pipelined_answers_matched(self) -> None:
        """
        Responses to earlier pipelined requests (with bodies, chunked, to HEAD, interim 100)
        are not taken for the upgrade's answer; a 101 to a plain request is not believed.
        """
        recorder = Recorder()
        recorder.feed(get("/1") + b"HEAD /2 HTTP/1.1\r\nHost: h\r\n\r\n" + get("/3")
                      + UPGRADE + FORGED)
        answers = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\nHTTP/1.1 101 Switching Protocols",
            b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n",  # HEAD: no body follows
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1f\r\nHTTP/1.1 101 Switching Protocol\r\n0\r\nX: 1\r\n\r\n",
        ]
        self.assertEqual(recorder.answer(*answers), b"")  # the upgrade is not answered yet
        self.assertEqual(recorder.rewriter.responses, 3)
        self.assertEqual(recorder.failures, [])
        self.assertEqual(recorder.answer(b"HTTP/1.1 426 Upgrade Required\r\n"
                                         b"Content-Length: 0\r\n\r\n"), FORGED_OUT)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=len(PIPELINED_ANSWERS)), max_size=10))
    def test_answers_any_split(self, cuts: list[int]) -> None:
        """However the backend's responses are cut into reads, the upgrade's answer is found."""
        recorder = Recorder()
        recorder.feed(get("/1") + b"HEAD /2 HTTP/1.1\r\n\r\n" + UPGRADE + FORGED)
        points = [0, *sorted(cuts), len(PIPELINED_ANSWERS)]
        chunks = [PIPELINED_ANSWERS[a:b] for a, b in itertools.pairwise(points)]
        self.assertEqual(recorder.answer(*chunks), FORGED_OUT)
        self.assertEqual(recorder.failures, [])

    def test_switching_without_upgrade_not_believed(self) -> None:
        """A 101 to a request that asked for no upgrade does not open a tunnel."""
        recorder = Recorder()
        recorder.feed(get("/1"))
        recorder.answer(SWITCHING)
        self.assertFalse(recorder.rewriter.tunnel)
        self.assertEqual(recorder.feed(FORGED), FORGED_OUT)
        self.assertEqual(recorder.failures, [])  # nothing was at stake: no upgrade pending
        recorder.feed(UPGRADE)
        self.assertEqual(len(recorder.failures), 1)  # but no upgrade can be confirmed now
        self.assertIn("cannot be followed", recorder.failures[0])

    def test_unframable_response_with_upgrade_pending_closes(self) -> None:
        """A response that cannot be framed while an upgrade waits ends the connection."""
        recorder = Recorder()
        recorder.feed(UPGRADE, FORGED)
        self.assertEqual(recorder.answer(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
                         b"")
        self.assertIn("cannot follow the backend's responses", recorder.failures[0])
        self.assertEqual(recorder.feed(FORGED), b"")

    def test_hold_is_bounded(self) -> None:
        """A client that floods while its upgrade awaits the answer is closed."""
        recorder = Recorder(max_head=1024)
        recorder.feed(UPGRADE, b"x" * 1000)
        self.assertEqual(recorder.failures, [])
        self.assertEqual(recorder.feed(b"x" * 100), b"")
        self.assertIn("before the backend answered", recorder.failures[0])

    def test_early_answer_during_body(self) -> None:
        """A 101 before the upgrade request's body is complete: the rest passes untouched."""
        recorder = Recorder()
        recorder.feed(UPGRADE_WITH_BODY + b"ab")
        self.assertEqual(recorder.answer(SWITCHING), b"")
        self.assertEqual(recorder.feed(b"cd" + FORGED), b"cd" + FORGED)

    def test_declined_during_body(self) -> None:
        """A refusal before the body is complete: the next head is rewritten."""
        recorder = Recorder()
        recorder.feed(UPGRADE_WITH_BODY + b"ab")
        self.assertEqual(recorder.answer(OK), b"")
        self.assertEqual(recorder.feed(b"cd" + FORGED), b"cd" + FORGED_OUT)

    def test_read_until_close_response(self) -> None:
        """After a response without length, no later answer is expected; an upgrade waits."""
        recorder = Recorder()
        recorder.feed(get("/1"))
        recorder.answer(b"HTTP/1.0 200 OK\r\n\r\nbody until the end")
        self.assertEqual(recorder.feed(UPGRADE + FORGED).count(b"forged"), 0)
        self.assertEqual(recorder.answer(SWITCHING), b"")  # part of that body, not an answer
        self.assertFalse(recorder.rewriter.tunnel)
