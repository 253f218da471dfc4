# -*- test-case-name: tests.test_launcher -*-
"""
What penbal settles with C{twist} or C{twistd} (the launcher) before the reactor exists: the
lean reactor as the default, and pyOpenSSL left unloaded when no TLS is configured.

Both happen while the launcher parses penbal's options, the last moment before it installs
a reactor (C{twist}) or penbal's assembly imports one (C{twistd}).  Options parsed anywhere
else (tests, tools) change nothing.
"""

from __future__ import annotations

import select
import sys
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from penbal.edges.tlssettings import is_tls_endpoint

#: The lean reactor's plugin name (src/twisted/plugins/penbal_reactor.py).
LEAN_REACTOR = "penbal-epoll"
_REACTOR_MODULE = "twisted.internet.reactor"


def launcher_kind(launcher: Any) -> str | None:
    """C{"twist"}, C{"twistd"} or None for the options object that runs penbal."""
    if launcher is None:
        return None
    from twisted.application.app import ServerOptions
    from twisted.application.twist._options import TwistOptions

    if isinstance(launcher, TwistOptions):
        return "twist"
    if isinstance(launcher, ServerOptions):
        return "twistd"
    return None


def prefer_lean_reactor(launcher: Any, modules: MutableMapping[str, Any] = sys.modules,
                        install_now: Callable[[], None] | None = None) -> bool:
    """Make the lean reactor the one C{launcher} installs, unless a reactor was named or is
    installed already (in C{modules}), or there is no epoll.  Return whether it was chosen."""
    if _REACTOR_MODULE in modules or not hasattr(select, "epoll"):
        return False  # twistd --reactor installs at once; trial and others bring their own
    kind = launcher_kind(launcher)
    if kind == "twist":
        if "reactor" in launcher:  # twist --reactor NAME
            return False
        launcher["reactorName"] = LEAN_REACTOR  # twist installs it after penbal's options
        return True
    if kind == "twistd":  # nothing installed a reactor, so none was named
        if install_now is None:
            from penbal.reactor import install

            install_now = install
        install_now()
        return True
    return False


def keep_tls_out(launcher: Any, endpoints: Iterable[str], backend_tls: bool,
                 modules: MutableMapping[str, Any] = sys.modules) -> bool:
    """With no TLS endpoint and no TLS to backends, stop pyOpenSSL from loading (Twisted's TCP
    transport imports it for C{startTLS}, which penbal never calls): about 12 MiB less.
    Return whether it was kept out."""
    if launcher_kind(launcher) is None or backend_tls:
        return False
    if any(is_tls_endpoint(e) or ":ssl:" in e or ":tls:" in e for e in endpoints):
        return False
    if "OpenSSL" in modules or "twisted.internet.tcp" in modules:
        return False  # too late: it is loaded, or TCP was loaded with TLS support
    modules["OpenSSL"] = None  # import OpenSSL now raises ImportError; Twisted copes
    return True
