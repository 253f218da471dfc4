# -*- test-case-name: tests.control.test_operations -*-
"""
Assembly of the operator's side of penbal: the running configuration (command line, then the
config file), the control port, the HTTP status, and the SIGHUP and SIGUSR1 handlers.

Called from L{penbal.tap} with the reactor; nothing here touches a global.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.error import ReactorNotRunning
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from penbal.balancer import Balancer
from penbal.config.file import ConfigError
from penbal.config.reconcile import capture, match, reconcile
from penbal.config.reload import Reloader, apply_file
from penbal.connlog import ConnectionLog
from penbal.control.executor import Executor
from penbal.control.listening import ListeningService
from penbal.control.options import CONTROL_ACL_NUMBER
from penbal.control.protocol import ControlFactory
from penbal.interfaces import PolicyContext
from penbal.policies.choice import PolicyChoice
from penbal.runtime import Runtime
from penbal.service import StartupError, install_signal
from penbal.status.snapshot import backend_statuses, build_snapshot
from penbal.status.text import summary_lines

log = Logger(namespace="penbal.status")
config_log = Logger(namespace="penbal.config")

#: How often backends removed while busy are checked for their last connection (UDP sessions
#: end by timeout, without a hook); TCP connections report their end at once.
REAP_INTERVAL = 1.0


class OperationsService(MultiService):
    """The control port and HTTP status as children; SIGHUP and SIGUSR1 while running.

    Both reopen the access log (logrotate); SIGHUP then re-reads the config file (C{-F}),
    without one it is logged and changes nothing; SIGUSR1 logs a status summary.  Both
    signals are handled from before any port listens: their default action would end penbal.
    """

    def __init__(self, reactor: Any, runtime: Runtime, reloader: Reloader | None) -> None:
        super().__init__()
        self._reactor = reactor
        self.runtime = runtime
        self.reloader = reloader
        self._reaper = LoopingCall(self.reap)
        self._signals = False

    def _install_signals(self) -> None:
        # twistd listens in privilegedStartService, twist in startService: whichever is first.
        if self._signals:
            return
        self._signals = True
        install_signal(self._reactor, signal.SIGHUP, self.hangup)
        install_signal(self._reactor, signal.SIGUSR1, self.user1)

    def hangup(self) -> None:
        """SIGHUP: reopen the access log, then re-read the config file (C{-F}) if any."""
        self.runtime.connlog.reopen()
        if self.reloader is not None:
            self.reloader.reload()
        else:
            self.no_config()

    def user1(self) -> None:
        """SIGUSR1: reopen the access log, then the status summary in the event log."""
        self.runtime.connlog.reopen()
        self.log_status()

    def privilegedStartService(self) -> None:
        self._install_signals()
        super().privilegedStartService()

    def startService(self) -> None:
        self._install_signals()
        super().startService()
        self._reaper.clock = self._reactor
        self._reaper.start(REAP_INTERVAL, now=False)

    def stopService(self) -> Any:
        if self._reaper.running:
            self._reaper.stop()
        return super().stopService()

    def reap(self) -> None:
        """Remove backends that drained out of the table (for relays that do not say so)."""
        pool = self.runtime.balancer.pool
        for backend in list(pool.retiring):
            pool.released(backend)

    def no_config(self) -> None:
        """SIGHUP without C{-F}: nothing to re-read; say so and keep running."""
        config_log.info(
            "SIGHUP: no config file to re-read (penbal was started without -F); nothing "
            "changed (the access log, if any, was reopened)",
            penbal_event="hangup-ignored",
        )

    def log_status(self) -> None:
        """Pen's SIGUSR1: a status summary in the log."""
        for line in summary_lines(build_snapshot(self.runtime)):
            log.info("status: {line}", line=line, penbal_event="status")


def _stopper(reactor: Any) -> Any:
    def stop() -> None:
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass

    return lambda: reactor.callLater(0, stop)


def make_runtime(
    reactor: Any,
    options: Any,
    balancer: Balancer,
    context: PolicyContext,
    policy: PolicyChoice,
    relay: Any | None,
    connlog: ConnectionLog,
) -> Runtime:
    """The runtime of a freshly assembled balancer, sharing the relay's access lists."""
    runtime = Runtime(
        balancer=balancer,
        clock=reactor,
        context=context,
        policy=policy,
        connlog=connlog,
        relays=[relay] if relay is not None else [],
        started=reactor.seconds(),
    )
    edges = getattr(relay, "edges", None) if relay is not None else None
    wired = options.get("control") is not None or options.get("config") is not None
    if edges is None and relay is not None and wired:
        from penbal.edges.gate import Edges  # the client ACL may be set at run time

        edges = Edges(reactor, reactor, acls=runtime.acls)
        relay.edges = edges
    if edges is not None:
        runtime.acls = edges.acls
        runtime.client_acl = edges.client_acl
    if options.listen_spec is not None:
        runtime.endpoints["listen"] = options.listen_spec.endpoint
    for name in ("control", "http"):
        description = getattr(options, f"{name}_endpoint", None)
        if description is not None:
            runtime.endpoints[name] = description
    return runtime


def build_operations(reactor: Any, options: Any, runtime: Runtime) -> OperationsService:
    """Apply the config file, wire the control port and the HTTP status; one-line errors."""
    base = capture(runtime).detached()
    entries = tuple(getattr(options, "control_acl_entries", ()))
    if entries:
        acls = list(base.acls)
        acls[CONTROL_ACL_NUMBER] = entries
        base = replace(base, acls=tuple(acls), control_acl=CONTROL_ACL_NUMBER)
    runtime.base = base
    runtime.stop = _stopper(reactor)
    path = options.get("config")
    reloader = None
    if path is not None:
        runtime.config_path = os.path.abspath(path)
        reloader = Reloader(runtime, runtime.config_path)
        runtime.reload = reloader.reload
        try:
            changes = apply_file(runtime, runtime.config_path)
        except ConfigError as e:
            raise StartupError(str(e)) from None
        log.info("config file {path} applied: {changes}", path=runtime.config_path,
                 changes="; ".join(changes) or "no change")
    else:
        reconcile(runtime, match(base, runtime))  # --control-acl
    if not len(runtime.balancer.pool) and runtime.balancer.settings.emergency is None:
        log.warn("penbal has no backends: add some with the control port or the config file")
    service = OperationsService(reactor, runtime, reloader)
    control = getattr(options, "control_endpoint", None)
    if control is not None:
        factory = ControlFactory(Executor(runtime), reactor)
        ListeningService(reactor, control, factory, "control port").setServiceParent(service)
    http = getattr(options, "http_endpoint", None)
    if http is not None:
        # Imported only when asked for: twisted.web and prometheus_client cost memory.
        from penbal.status.site import status_site

        site = status_site(lambda: build_snapshot(runtime), lambda: not service.running,
                           lambda: backend_statuses(runtime, runtime.now()))
        ListeningService(reactor, http, site, "HTTP status").setServiceParent(service)
    return service
