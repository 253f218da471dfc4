# -*- test-case-name: tests.edges.test_forwarded -*-
"""
The backend's side of HTTP mode: follow its responses in order, with their framing, so that
each final answer is matched to the request it answers and an C{Upgrade} or C{CONNECT} is
known to be agreed to (C{101}, or C{2xx} to a C{CONNECT}) or declined (see
L{penbal.edges.forwarded}).
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Callable

from penbal.edges.httpframing import (
    CONNECT,
    HEAD_METHOD,
    MAX_LINE,
    PLAIN,
    TOKEN,
    UPGRADE,
    chunk_size,
    content_length,
    take_line,
)

#: Requests sent on and not answered yet; a client that pipelines more is closed.
MAX_OUTSTANDING = 65536

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")


class _Reply(enum.Enum):
    HEAD = "head"
    BODY = "body"
    CHUNK_SIZE = "chunk-size"
    CHUNK_DATA = "chunk-data"
    CHUNK_END = "chunk-end"
    TRAILER = "trailer"
    UNTIL_CLOSE = "until-close"
    TUNNEL = "tunnel"
    LOST = "lost"


class ResponseError(ValueError):
    """The backend's stream cannot be framed, so its answers cannot be matched to requests."""


class ResponseFollower:
    """
    Reads what a backend sends (L{feed}) against what each request sent on awaits
    (L{expect}); tells C{agreed} when an upgrade is accepted, C{declined} when an upgrade's
    final answer refuses it, and C{lost} (with the reason) when the responses cannot be framed.
    """

    def __init__(
        self,
        max_head: int,
        agreed: Callable[[], None],
        declined: Callable[[], None],
        lost: Callable[[str], None],
    ) -> None:
        self._max_head = max_head
        self._agreed = agreed
        self._declined = declined
        self._lost = lost
        self._awaiting: deque[int] = deque()
        self._reply = _Reply.HEAD
        self._buffer = bytearray()
        self._remaining = 0
        self.responses = 0

    @property
    def tunnel(self) -> bool:
        """True once an upgrade was agreed: nothing is followed any more."""
        return self._reply is _Reply.TUNNEL

    @property
    def lost(self) -> bool:
        """True once the responses could not be framed."""
        return self._reply is _Reply.LOST

    def expect(self, awaits: int) -> bool:
        """A request was sent on that awaits C{awaits}; False if too many are outstanding.
        Once the answers cannot be told apart (lost, or a body that runs to the close),
        nothing is recorded."""
        reply = self._reply
        if reply is _Reply.LOST or reply is _Reply.UNTIL_CLOSE:
            return True
        if len(self._awaiting) >= MAX_OUTSTANDING:
            return False
        self._awaiting.append(awaits)
        return True

    def feed(self, data: bytes) -> None:
        """Follow bytes the backend sent."""
        reply = self._reply
        if reply is _Reply.TUNNEL or reply is _Reply.LOST or reply is _Reply.UNTIL_CLOSE:
            return
        try:
            self._read(data)
        except ResponseError as e:
            self._reply = _Reply.LOST
            self._buffer.clear()
            self._awaiting.clear()
            self._lost(str(e))

    def _read(self, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            reply = self._reply
            if reply is _Reply.BODY or reply is _Reply.CHUNK_DATA:
                take = min(self._remaining, len(data) - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._reply = _Reply.HEAD if reply is _Reply.BODY else _Reply.CHUNK_END
                continue
            if reply is _Reply.TUNNEL or reply is _Reply.UNTIL_CLOSE or reply is _Reply.LOST:
                return
            buffer = self._buffer
            buffer += data[pos:]
            pos = len(data)
            rest = self._consume(buffer)
            if rest is not None:
                data, pos = rest, 0

    def _consume(self, buffer: bytearray) -> bytes | None:
        """Take one unit from the buffered response bytes; the bytes after it, or None."""
        reply = self._reply
        if reply is _Reply.HEAD:
            while buffer.startswith(b"\r\n"):
                del buffer[:2]
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > self._max_head:
                    raise ResponseError(f"response head over {self._max_head} bytes")
                return None
            head = bytes(buffer[:end])
            rest = bytes(buffer[end + 4 :])
            buffer.clear()
            self._head(head)
            return rest
        if reply is _Reply.CHUNK_END:
            if len(buffer) < 2:
                return None
            if buffer[:2] != b"\r\n":
                raise ResponseError("chunk data not followed by CRLF")
            rest = bytes(buffer[2:])
            buffer.clear()
            self._reply = _Reply.CHUNK_SIZE
            return rest
        limit = MAX_LINE if reply is _Reply.CHUNK_SIZE else self._max_head
        taken = take_line(buffer, 0, limit, ResponseError)
        if taken is None:
            return None
        line, rest = taken
        if reply is _Reply.CHUNK_SIZE:
            size = chunk_size(line, ResponseError)
            if size == 0:
                self._reply = _Reply.TRAILER
            else:
                self._reply = _Reply.CHUNK_DATA
                self._remaining = size
        elif line == b"":
            self._reply = _Reply.HEAD
        return rest

    def _head(self, head: bytes) -> None:
        """One response head: which request it answers, what follows it, and the upgrade."""
        lines = head.split(b"\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise ResponseError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
        status = int(match.group(1))
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or TOKEN.fullmatch(name) is None:
                raise ResponseError(f"malformed header line {line[:60]!r}")
            lower = name.lower()
            if lower == b"content-length":
                lengths.extend(v.strip() for v in value.split(b","))
            elif lower == b"transfer-encoding":
                codings.extend(v.strip().lower() for v in value.split(b",") if v.strip())
        awaiting = self._awaiting
        awaits = awaiting[0] if awaiting else PLAIN
        if status == 101:
            if awaits != UPGRADE:
                raise ResponseError("101 Switching Protocols to a request without Upgrade")
            self._tunnel()
            return
        if status < 200:
            return  # 100 Continue, 103 Early Hints: the final answer is still to come
        if awaiting:
            awaiting.popleft()
        self.responses += 1
        if awaits == CONNECT and status < 300:
            self._tunnel()
            return
        self._framing(status, awaits, lengths, codings)
        if awaits >= UPGRADE:
            self._declined()

    def _framing(
        self, status: int, awaits: int, lengths: list[bytes], codings: list[bytes]
    ) -> None:
        """What follows a final response head (RFC 9112, section 6.3)."""
        if awaits == HEAD_METHOD or status in (204, 304):
            self._reply = _Reply.HEAD
        elif codings:
            self._reply = _Reply.CHUNK_SIZE if codings[-1] == b"chunked" else _Reply.UNTIL_CLOSE
        elif lengths:
            self._remaining = content_length(lengths, ResponseError)
            self._reply = _Reply.BODY if self._remaining else _Reply.HEAD
        else:
            self._reply = _Reply.UNTIL_CLOSE  # the body ends when the backend closes

    def _tunnel(self) -> None:
        """The backend agreed to the upgrade: from now on nothing is parsed."""
        self._reply = _Reply.TUNNEL
        self._buffer.clear()
        self._awaiting.clear()
        self._agreed()
