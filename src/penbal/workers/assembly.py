# -*- test-case-name: tests.workers.test_workers_process -*-
"""
Assembly of C{--workers N}, called from L{penbal.tap}: the main process's worker group, and a
worker's own services (its relay on the adopted socket, its AMP channel).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IStreamServerEndpoint

from penbal.relay.listener import RelayFactory
from penbal.runtime import Runtime
from penbal.service import TCPBalancerService
from penbal.workers.command import worker_command
from penbal.workers.state import workers_queue
from penbal.workers.supervisor import WorkerGroup
from penbal.workers.worker import AdoptedPortEndpoint, WorkerChannelService, WorkerLink


def build_worker_group(reactor: Any, options: Any, runtime: Runtime, executable: str,
                       environment: Mapping[str, str], launcher: Any) -> WorkerGroup:
    """The main process's group of C{options["workers"]} workers; its figures in the views."""
    def command(listening: bool) -> list[str]:
        return worker_command(executable, launcher, options.arguments, listening)

    group = WorkerGroup(reactor, runtime, options.worker_address, options["workers"], command,
                        environment, stop_timeout=options["shutdown-timeout"],
                        per_client_limit=bool(options.get("max-per-client")))
    runtime.relays.append(group.totals)
    # Each worker holds its own clients: the views show their queues summed.
    runtime.queue = workers_queue(group.totals, runtime.queue)
    # logrotate signals the main process; the workers write the records.
    runtime.connlog.reopen_followers.append(group.reopen_access_logs)
    runtime.removed_now.append(group.backend_removed_now)
    return group


def build_worker(reactor: Any, options: Any, runtime: Runtime,
                 relay: RelayFactory) -> MultiService:
    """A worker: the AMP channel now, the relay once the first state push is applied and
    the worker has its listening socket (a spare is handed one later)."""
    listen_fd, channel_fd = options.worker_fds
    top = MultiService()
    endpoint = AdoptedPortEndpoint(reactor, listen_fd)

    def endpoint_for(reactor: Any, description: str) -> IStreamServerEndpoint:
        return endpoint

    balancer = TCPBalancerService(reactor, options.listen_spec, relay,
                                  stop_timeout=options["shutdown-timeout"],
                                  endpoint_for=endpoint_for)

    def ready() -> None:
        balancer.setServiceParent(top)

    def main_gone() -> None:
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass

    link = WorkerLink(runtime, relay, endpoint, ready, main_gone,
                      close_unfit=options["check"] is not None and options["on-unfit"] == "close")
    WorkerChannelService(reactor, channel_fd, link).setServiceParent(top)
    return top
