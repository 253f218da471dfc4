# -*- test-case-name: tests.edges.test_forwarded -*-
"""
HTTP mode (Pen's C{-H}): add C{X-Forwarded-For} and C{X-Forwarded-Proto} to every HTTP/1.x
request head of a client's stream, including each request of a kept-alive connection.

The rewriter follows the stream's framing incrementally (heads split across reads,
C{Content-Length} bodies, chunked bodies with trailers), so bodies pass untouched and the next
head is always found.  Whatever it cannot frame with certainty (a malformed head, both
C{Content-Length} and C{Transfer-Encoding}, an unknown coding, a bare LF) ends the connection:
it never guesses, so it cannot be made to desynchronise from the backend.  Headers of these
names sent by the client are removed, so a client cannot forge them.  After C{CONNECT} or an
C{Upgrade} request the rest of the stream passes untouched.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable

MAX_HEAD = 65536
MAX_LINE = 4096

_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/1\.([01])")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(;.*)?")
_DROPPED = (b"x-forwarded-for", b"x-forwarded-proto")


class _State(enum.Enum):
    HEAD = "head"
    BODY = "body"
    CHUNK_SIZE = "chunk-size"
    CHUNK_DATA = "chunk-data"
    CHUNK_END = "chunk-end"
    TRAILER = "trailer"
    TUNNEL = "tunnel"
    FAILED = "failed"


class RequestError(ValueError):
    """The client's stream is not HTTP/1.x that can be framed with certainty."""


class ForwardedRewriter:
    """Rewrites one client's request stream; L{feed} takes what was read, returns what to send."""

    def __init__(
        self,
        client: str,
        proto: str,
        fail: Callable[[str], None],
        max_head: int = MAX_HEAD,
    ) -> None:
        self._added = (
            b"X-Forwarded-For: " + client.encode("ascii", "replace") + b"\r\n"
            b"X-Forwarded-Proto: " + proto.encode("ascii") + b"\r\n"
        )
        self._fail = fail
        self._max_head = max_head
        self._state = _State.HEAD
        self._buffer = bytearray()
        self._scanned = 0
        self._remaining = 0
        self._tunnel_after = False
        self.requests = 0

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
            self._state = _State.FAILED
            self._buffer.clear()
            self._fail(f"bad HTTP request: {e}")
        return b"".join(out)

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
        end = buffer.find(b"\r\n", self._scanned)
        if end < 0:
            if len(buffer) > (MAX_LINE if state is _State.CHUNK_SIZE else self._max_head):
                raise RequestError("chunk-size or trailer line too long")
            return None
        line = bytes(buffer[:end])
        rest = bytes(buffer[end + 2 :])
        buffer.clear()
        if b"\n" in line or b"\r" in line:
            raise RequestError("bare CR or LF in chunked framing")
        out.append(line + b"\r\n")
        if state is _State.CHUNK_SIZE:
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                raise RequestError(f"invalid chunk size line {line[:40]!r}")
            size = int(match.group(1), 16)
            if size == 0:
                self._state = _State.TRAILER
            else:
                self._state = _State.CHUNK_DATA
                self._remaining = size
        elif line == b"":
            self._request_done()
        return rest

    def _request_done(self) -> None:
        self._state = _State.TUNNEL if self._tunnel_after else _State.HEAD

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
            if not colon or _TOKEN.fullmatch(name) is None:
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
        self._tunnel_after = method == b"CONNECT" or (upgrade and b"upgrade" in connection)
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
            if any(not v.isdigit() for v in lengths) or len(set(lengths)) != 1:
                raise RequestError(f"invalid Content-Length {b', '.join(lengths)!r}")
            size = int(lengths[0])
            if size > 0:
                self._state = _State.BODY
                self._remaining = size
                return
        if method == b"CONNECT":
            self._state = _State.TUNNEL
            return
        self._request_done()
