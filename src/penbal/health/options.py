# -*- test-case-name: tests.health.test_options -*-
"""
The health-check options of C{twist penbal} and their validation; L{penbal.options} includes
them, so that a mistake is one line at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from twisted.python import usage

from penbal.health.credentials import CredentialsError, find_credentials
from penbal.optiontypes import choice, number

HEALTH_FLAGS: list[list[Any]] = [
    ["no-failback", None, "galera-writer: keep the new writer when the old one is fit again."],
    ["discover", None, "--check galera: add nodes named in wsrep_incoming_addresses."],
]

HEALTH_PARAMETERS: list[list[Any]] = [
    ["check", None, None, "Active health check of each backend: tcp or galera.",
     choice("--check", ("tcp", "galera"))],
    ["check-interval", None, 1.0, "Seconds between two checks of a backend.",
     number(float, 0.01, "--check-interval")],
    ["check-timeout", None, 1.0, "Seconds a check may take, for connect and for each read.",
     number(float, 0.01, "--check-timeout")],
    ["rise", None, 2, "Good checks in a row for an unfit backend to come back.",
     number(int, 1, "--rise")],
    ["fall", None, 2, "Bad checks in a row to take a backend out.", number(int, 1, "--fall")],
    ["check-credentials", None, None,
     "my.cnf-style file, [client] user= password=, for --check galera (or PENBAL_CHECK_USER"
     " and PENBAL_CHECK_PASSWORD in the environment)."],
    ["donor", None, "avoid",
     "Galera donor/desynced nodes: avoid (only if no synced node is fit), never, or use.",
     choice("--donor", ("avoid", "never", "use"))],
    ["on-unfit", None, "keep", "Connections to a backend that became unfit: keep or close.",
     choice("--on-unfit", ("keep", "close"))],
]


def check_health_options(
    options: usage.Options, environ: Mapping[str, str] | None = None
) -> None:
    """Cross-option checks; finds the Galera check's credentials (kept in the options)."""
    options["check-credentials-found"] = None
    if options["check"] is not None and options.get("udp"):
        raise usage.UsageError("--check is for TCP backends: with --udp, use --udp-check")
    if options["discover"] and options["check"] != "galera":
        raise usage.UsageError("--discover needs --check galera")
    if options["check"] != "galera":
        return
    try:
        options["check-credentials-found"] = find_credentials(
            options["check-credentials"], os.environ if environ is None else environ
        )
    except CredentialsError as e:
        raise usage.UsageError(str(e)) from None
