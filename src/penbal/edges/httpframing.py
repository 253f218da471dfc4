# -*- test-case-name: tests.edges.test_forwarded -*-
"""
HTTP/1.x framing pieces shared by both directions of HTTP mode (L{penbal.edges.forwarded}
reads requests, L{penbal.edges.httpresponses} reads responses): limits, tokens, chunk-size
lines, C{Content-Length}, and what a request awaits in its answer.
"""

from __future__ import annotations

import re

MAX_HEAD = 65536
MAX_LINE = 4096

TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(;.*)?")

# What a request awaits in its response (kept as small ints: one pointer per request).
PLAIN, HEAD_METHOD, UPGRADE, CONNECT = 0, 1, 2, 3


def chunk_size(line: bytes, error: type[ValueError]) -> int:
    """The size on a chunk-size line (extensions allowed), or C{error} naming the line."""
    match = _CHUNK_SIZE.fullmatch(line)
    if match is None:
        raise error(f"invalid chunk size line {line[:40]!r}")
    return int(match.group(1), 16)


def take_line(
    buffer: bytearray, start: int, limit: int, error: type[ValueError]
) -> tuple[bytes, bytes] | None:
    """The first CRLF-ended line of C{buffer} (searched from C{start}) and the bytes after it,
    emptying C{buffer}; None while the line is incomplete; C{error} once it exceeds C{limit}."""
    end = buffer.find(b"\r\n", start)
    if end < 0:
        if len(buffer) > limit:
            raise error("chunk-size or trailer line too long")
        return None
    line = bytes(buffer[:end])
    rest = bytes(buffer[end + 2 :])
    buffer.clear()
    return line, rest


def content_length(lengths: list[bytes], error: type[ValueError]) -> int:
    """The one length that every C{Content-Length} value agrees on, or C{error}."""
    if any(not v.isdigit() for v in lengths) or len(set(lengths)) != 1:
        raise error(f"invalid Content-Length {b', '.join(lengths)!r}")
    return int(lengths[0])
