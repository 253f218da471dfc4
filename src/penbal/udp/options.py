# -*- test-case-name: tests.udp.test_options -*-
"""
The UDP part of C{twist penbal}'s command line, checked after parsing (the rows of the option
table themselves are in L{penbal.options}).
"""

from __future__ import annotations

from typing import Any

from penbal.address import SpecError
from penbal.udp.probe import parse_udp_check


def check_udp_options(options: Any) -> None:
    """Turn C{--udp-check} into a L{penbal.udp.probe.UDPCheckSpec}; refuse it without --udp."""
    text = options.get("udp-check")
    if text is None or not isinstance(text, str):
        return
    if not options.get("udp"):
        raise SpecError(f"--udp-check {text!r} needs --udp (UDP mode)")
    options["udp-check"] = parse_udp_check(text)
