# -*- test-case-name: tests.edges.test_forwarded -*-
"""
HTTP mode (Pen's C{-H}): add C{X-Forwarded-For} and C{X-Forwarded-Proto} to every HTTP/1.x
request head of a client's stream, including each request of a kept-alive connection.

The rewriter follows the stream's framing incrementally (heads split across reads,
C{Content-Length} bodies, chunked bodies with trailers), so bodies pass untouched and the next
head is always found.  Whatever it cannot frame with certainty (a malformed head, both
C{Content-Length} and C{Transfer-Encoding}, an unknown coding, a bare LF) ends the connection:
it never guesses, so it cannot be made to desynchronise from the backend.  Headers of these
names sent by the client are removed, so a client cannot forge them.

After C{CONNECT} or an C{Upgrade} request the stream may stop being HTTP, but only if the
backend agrees, so the rewriter also follows the backend's responses (L{response}), in order,
with their framing, to know which one answers which request.  What the client sends after
such a request is held (at most C{max_head} bytes) until its answer: C{101 Switching
Protocols} to an C{Upgrade}, or C{2xx} to a C{CONNECT}, and the held bytes and the rest of the
stream pass untouched both ways; any other final answer, and the held bytes are read as the
next requests, rewritten as usual.  A client cannot tunnel forged headers past a backend that
said no.  Responses it cannot frame are no danger in themselves, but then no upgrade can be
confirmed: an C{Upgrade} or C{CONNECT} then ends the connection.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable

from penbal.edges.httpframing import (
    CONNECT,
    HEAD_METHOD,
    MAX_HEAD,
    MAX_LINE,
    PLAIN,
    TOKEN,
    UPGRADE,
    chunk_size,
    content_length,
    take_line,
)
from penbal.edges.httpresponses import MAX_OUTSTANDING, ResponseFollower

_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/1\.([01])")
_DROPPED = (b"x-forwarded-for", b"x-forwarded-proto")


class _State(enum.Enum):
    HEAD = "head"
    BODY = "body"
    CHUNK_SIZE = "chunk-size"
    CHUNK_DATA = "chunk-data"
    CHUNK_END = "chunk-end"
    TRAILER = "trailer"
    HOLD = "hold"
    TUNNEL = "tunnel"
    FAILED = "failed"


class RequestError(ValueError):
    """The client's stream is not HTTP/1.x that can be framed with certainty."""


class ForwardedRewriter:
    """
    Rewrites one client's request stream: L{feed} takes what the client sent and returns what
    to send to the backend now; L{response} sees what the backend sent (before or after it is
    relayed) and, when an upgrade was answered, hands the held bytes to C{send}.
    """

    def __init__(
        self,
        client: str,
        proto: str,
        fail: Callable[[str], None],
        max_head: int = MAX_HEAD,
        *,
        send: Callable[[bytes], None],
    ) -> None:
        self._added = (
            b"X-Forwarded-For: " + client.encode("ascii", "replace") + b"\r\n"
            b"X-Forwarded-Proto: " + proto.encode("ascii") + b"\r\n"
        )
        self._fail = fail
        self._send = send
        self._max_head = max_head
        self._state = _State.HEAD
        self._buffer = bytearray()
        self._held = bytearray()
        self._scanned = 0
        self._remaining = 0
        self._tunnel_after = False
        self.requests = 0
        # The backend's side: what each request sent on awaits, and the response framing.
        self._responses = ResponseFollower(max_head, self._agreed, self._declined, self._lost)

    @property
    def tunnel(self) -> bool:
        """True once an upgrade was agreed: both directions pass untouched from now on."""
        return self._responses.tunnel

    @property
    def responses(self) -> int:
        """Final responses matched to requests so far."""
        return self._responses.responses

    @property
    def holding(self) -> bool:
        """True while client bytes are held for an upgrade's answer: the client's end of
        stream must wait for them (see L{penbal.relay.legs.FrontLeg})."""
        return self._state is _State.HOLD or bool(self._held)

    def feed(self, data: bytes) -> bytes:
        """Take bytes read from the client; return the bytes to send to the backend."""
        state = self._state
        if state is _State.TUNNEL:
            return data
        if state is _State.FAILED:
            return b""
        out: list[bytes] = []
        try:
            self._run(data, out)
        except RequestError as e:
            self._failed(f"bad HTTP request: {e}")
        return b"".join(out)

    def _failed(self, why: str) -> None:
        self._state = _State.FAILED
        self._buffer.clear()
        self._held.clear()
        self._fail(why)

    def _run(self, data: bytes, out: list[bytes]) -> None:
        pos = 0
        while pos < len(data):
            state = self._state
            if state is _State.BODY or state is _State.CHUNK_DATA:
                take = min(self._remaining, len(data) - pos)
                out.append(data[pos : pos + take] if take < len(data) else data)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    if state is _State.BODY:
                        self._request_done()
                    else:
                        self._state = _State.CHUNK_END
                continue
            if state is _State.TUNNEL:
                out.append(data[pos:])
                return
            if state is _State.HOLD:
                self._held += data[pos:]
                if len(self._held) > self._max_head:
                    raise RequestError(
                        f"over {self._max_head} bytes sent before the backend answered"
                        " the Upgrade or CONNECT request"
                    )
                return
            # Every other state accumulates up to a delimiter.
            self._scanned = max(0, len(self._buffer) - 3)
            self._buffer += data[pos:]
            pos = len(data)
            rest = self._consume_buffered(out)
            if rest is not None:
                data, pos = rest, 0

    def _consume_buffered(self, out: list[bytes]) -> bytes | None:
        """Process the buffer; return bytes after a completed unit (to run again), or None."""
        buffer = self._buffer
        state = self._state
        if state is _State.HEAD:
            while buffer.startswith(b"\r\n"):
                del buffer[:2]
                self._scanned = max(0, self._scanned - 2)
            end = buffer.find(b"\r\n\r\n", self._scanned)
            if end < 0:
                if len(buffer) > self._max_head:
                    raise RequestError(f"request head over {self._max_head} bytes")
                return None
            head = bytes(buffer[:end])
            rest = bytes(buffer[end + 4 :])
            buffer.clear()
            out.append(self._rewrite_head(head))
            return rest
        if state is _State.CHUNK_END:
            if len(buffer) < 2:
                if bytes(buffer) not in (b"", b"\r"):
                    raise RequestError("chunk data not followed by CRLF")
                return None
            if buffer[:2] != b"\r\n":
                raise RequestError("chunk data not followed by CRLF")
            out.append(b"\r\n")
            rest = bytes(buffer[2:])
            buffer.clear()
            self._state = _State.CHUNK_SIZE
            return rest
        # CHUNK_SIZE and TRAILER work line by line.
        limit = MAX_LINE if state is _State.CHUNK_SIZE else self._max_head
        taken = take_line(buffer, self._scanned, limit, RequestError)
        if taken is None:
            return None
        line, rest = taken
        if b"\n" in line or b"\r" in line:
            raise RequestError("bare CR or LF in chunked framing")
        out.append(line + b"\r\n")
        if state is _State.CHUNK_SIZE:
            size = chunk_size(line, RequestError)
            if size == 0:
                self._state = _State.TRAILER
            else:
                self._state = _State.CHUNK_DATA
                self._remaining = size
        elif line == b"":
            self._request_done()
        return rest

    def _request_done(self) -> None:
        self._state = _State.HOLD if self._tunnel_after else _State.HEAD

    def _rewrite_head(self, head: bytes) -> bytes:
        if b"\n" in head.replace(b"\r\n", b"") or b"\r" in head.replace(b"\r\n", b""):
            raise RequestError("bare CR or LF in the request head")
        lines = head.split(b"\r\n")
        match = _REQUEST_LINE.fullmatch(lines[0])
        if match is None:
            raise RequestError(f"not an HTTP/1.x request line: {lines[0][:60]!r}")
        method = match.group(1)
        kept = [lines[0]]
        lengths: list[bytes] = []
        codings: list[bytes] = []
        connection: list[bytes] = []
        upgrade = False
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or TOKEN.fullmatch(name) is None:
                raise RequestError(f"malformed header line {line[:60]!r}")
            lower = name.lower()
            if lower in _DROPPED:
                continue
            kept.append(line)
            if lower == b"content-length":
                lengths.extend(v.strip() for v in value.split(b","))
            elif lower == b"transfer-encoding":
                codings.extend(v.strip().lower() for v in value.split(b",") if v.strip())
            elif lower == b"connection":
                connection.extend(v.strip().lower() for v in value.split(b","))
            elif lower == b"upgrade":
                upgrade = True
        self.requests += 1
        if method == b"CONNECT":
            awaits = CONNECT
        elif upgrade and b"upgrade" in connection:
            awaits = UPGRADE
        else:
            awaits = HEAD_METHOD if method == b"HEAD" else PLAIN
        self._tunnel_after = awaits >= UPGRADE
        if self._responses.lost and self._tunnel_after:
            raise RequestError("Upgrade or CONNECT, but the backend's responses cannot be"
                               " followed to see whether it agreed")
        if not self._responses.expect(awaits):
            raise RequestError(f"over {MAX_OUTSTANDING} requests awaiting responses")
        self._frame(method, lengths, codings)
        return b"\r\n".join(kept) + b"\r\n" + self._added + b"\r\n"

    def _frame(self, method: bytes, lengths: list[bytes], codings: list[bytes]) -> None:
        """Set the state that follows this head from its framing headers."""
        if codings:
            if lengths:
                raise RequestError("both Transfer-Encoding and Content-Length")
            if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
                raise RequestError(f"unsupported Transfer-Encoding {b', '.join(codings)!r}")
            self._state = _State.CHUNK_SIZE
            return
        if lengths:
            size = content_length(lengths, RequestError)
            if size > 0:
                self._state = _State.BODY
                self._remaining = size
                return
        self._request_done()  # CONNECT included: held until the backend answers it

    # -- the backend's side (penbal.edges.httpresponses) -------------------------------

    def response(self, data: bytes) -> None:
        """
        Follow bytes the backend sent: match each final response to the request it answers
        and, for an C{Upgrade} or C{CONNECT}, release what was held (see the module).
        """
        self._responses.feed(data)

    def _lost(self, why: str) -> None:
        """The backend's responses cannot be framed: fatal only while an upgrade waits."""
        if self._state is _State.HOLD or self._tunnel_after:
            self._failed(f"cannot follow the backend's responses ({why}) to see whether it"
                         " agreed to the Upgrade or CONNECT")

    def _agreed(self) -> None:
        """The backend agreed to the upgrade: from now on nothing is parsed either way."""
        if self._state is _State.FAILED:
            return
        # Whatever the client sent after the request (or the rest of its body) goes as it is.
        held = bytes(self._buffer) + bytes(self._held)
        self._buffer.clear()
        self._held.clear()
        self._state = _State.TUNNEL
        if held:
            self._send(held)

    def _declined(self) -> None:
        """The backend refused the upgrade: what the client sent since is HTTP again."""
        self._tunnel_after = False
        if self._state is not _State.HOLD:
            return  # still in the request's body; the next head is read as usual
        self._state = _State.HEAD
        held = bytes(self._held)
        self._held.clear()
        if held:
            out = self.feed(held)
            if out:
                self._send(out)
