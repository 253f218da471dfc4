# -*- test-case-name: tests.control.test_endpoint -*-
"""
Where the control port and the HTTP status listen: Pen's C{[HOST:]PORT} with HOST defaulting
to 127.0.0.1 (never every interface unless asked), C{unix:/path} (mode 600 unless a
C{mode=} is given), or any Twisted server endpoint string.
"""

from __future__ import annotations

from penbal.address import SpecError, parse_listen, parse_port
from penbal.optiontypes import is_digits

ENDPOINT_FORM = "[HOST:]PORT (HOST defaults to 127.0.0.1), unix:/path, or a Twisted endpoint"
EXPLICIT = ("tcp:", "tcp6:", "ssl:", "tls:", "systemd:")


def parse_endpoint(text: str, what: str, unix_mode: str = "600") -> str:
    """A Twisted server endpoint description for C{text}; L{SpecError} names C{what}."""
    value = text.strip()
    if not value:
        raise SpecError(f"empty {what}: expected {ENDPOINT_FORM}")
    if value.startswith("/"):
        value = "unix:" + value.replace(":", "\\:")
    if value.startswith("unix:"):
        path = value[5:].split(":")[0]
        if not path:
            raise SpecError(f"invalid {what} {text!r}: missing path, expected unix:/path")
        fields = value.split(":")[2:]
        if not any(field.startswith("mode=") for field in fields):
            value += f":mode={unix_mode}"
        return value
    if value.startswith(EXPLICIT):
        return value
    if is_digits(value):
        return f"tcp:{parse_port(value, what)}:interface=127.0.0.1"
    try:
        return parse_listen(value).endpoint
    except SpecError:
        raise SpecError(f"invalid {what} {text!r}: expected {ENDPOINT_FORM}") from None


def unix_path(description: str) -> str | None:
    """The socket path of a C{unix:} description, if it is one."""
    if not description.startswith("unix:"):
        return None
    path = []
    escaped = False
    for char in description[5:]:
        if escaped:
            path.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            break
        else:
            path.append(char)
    return "".join(path)
