# -*- test-case-name: tests.udp.test_listen -*-
"""
Where the UDP balancer listens: Pen's ``[HOST:]PORT``, or ``udp:PORT[:interface=ADDR]`` in the
style of Twisted's endpoint strings (there is no UDP endpoint in Twisted to hand it to).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from penbal.address import ENDPOINT_PREFIXES, ListenSpec, SpecError, parse_port

UDP_LISTEN_FORM = "[HOST:]PORT or udp:PORT[:interface=ADDR] (an IP address; IPv6 in brackets)"


@dataclass(frozen=True)
class UDPListenSpec(ListenSpec):
    """A UDP port and the local address to bind ("" for every IPv4 address, "::" for all)."""

    interface: str = ""

    @property
    def wildcard(self) -> bool:
        """True when bound to every address (replies then need the address the client used)."""
        return self.interface in ("", "0.0.0.0", "::")


def _interface(value: str, text: str) -> str:
    """An IP literal to bind to; brackets and Twisted's backslash escapes are accepted."""
    value = value.replace("\\", "")
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if value == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise SpecError(
            f"invalid interface {value!r} in listen address {text!r}: expected {UDP_LISTEN_FORM}"
        ) from None


def _spec(port: int, interface: str) -> UDPListenSpec:
    shown = interface.replace(":", "\\:")
    endpoint = f"udp:{port}:interface={shown}" if interface else f"udp:{port}"
    return UDPListenSpec(endpoint, port, interface)


def parse_udp_listen(text: str) -> UDPListenSpec:
    """Parse LISTEN in UDP mode, or raise L{SpecError} with one line naming the value."""
    text = text.strip()
    if text.startswith(ENDPOINT_PREFIXES):
        raise SpecError(
            f"invalid listen address {text!r} with --udp: TCP endpoints do not apply, "
            f"expected {UDP_LISTEN_FORM}"
        )
    if text.startswith("udp:"):
        port_text, _, options = text[4:].partition(":")
        port = parse_port(port_text.removeprefix("port="), f"listen address {text!r}")
        if not options:
            return _spec(port, "")
        key, _, value = options.partition("=")
        if key != "interface" or not value:
            raise SpecError(
                f"invalid listen address {text!r}: only interface=ADDR may follow the port, "
                f"expected {UDP_LISTEN_FORM}"
            )
        return _spec(port, _interface(value, text))
    if text.isdigit():
        return _spec(parse_port(text, "listen address"), "")
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise SpecError(f"invalid listen address {text!r}: expected {UDP_LISTEN_FORM}")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise SpecError(f"invalid listen address {text!r}: expected {UDP_LISTEN_FORM}")
    port = parse_port(port_text, f"listen address {text!r}")
    return _spec(port, _interface(host, text))
