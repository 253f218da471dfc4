# -*- test-case-name: tests.integration.test_cli,tests.integration.test_tcp_relay -*-
"""
Assembly of C{twist penbal}: parsed options in, a running balancer service out.

This is the only module that touches the global reactor, randomness and the clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penbal.options import Options, first_byte_timeout, queue_timeout

if TYPE_CHECKING:
    from twisted.application.service import IService

__all__ = ["Options", "makeService", "policy_settings"]


def policy_settings(options: Options) -> dict[str, Any]:
    """The settings the selection policy is given (see L{penbal.interfaces.PolicyContext}).

    A worker of C{--workers N} always fails back: with C{--no-failback} each worker would keep
    its own history of Galera writers (a new worker, or the spare, has none), and two that
    remembered differently would send writes to two nodes (see docs/workers.rst)."""
    worker = options.worker_fds is not None
    return {"failback": worker or not options["no-failback"],
            "checked": options["check"] is not None}


def makeService(options: Options) -> IService:
    """Assemble the balancer from parsed options (the only place with global collaborators).

    Everything is imported here, not at the top: C{twist} imports this module to parse the
    options, before it installs the reactor, and penbal decides then whether pyOpenSSL loads.
    """
    import random
    import signal

    from penbal.service import hold_signals

    # SIGHUP and SIGUSR1 would end penbal while it starts (their default action): held from
    # here, acted on once the operations service installs their handlers, before any port
    # listens (penbal.control.operations).
    hold_signals((signal.SIGHUP, signal.SIGUSR1))

    from twisted.application.service import MultiService
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.internet.interfaces import IStreamServerEndpoint

    from penbal.backend import Backend
    from penbal.balancer import Balancer, Settings
    from penbal.connlog import ConnectionLog
    from penbal.control.operations import build_operations, make_runtime
    from penbal.edges.config import build_edges
    from penbal.garbage import freeze_startup_objects
    from penbal.interfaces import PolicyContext
    from penbal.policies.registry import PolicyError, make_policy
    from penbal.pool import BackendPool
    from penbal.relay.config import RelayConfig
    from penbal.relay.connect import Connector, DirectConnector, TwistedConnector
    from penbal.relay.listener import RelayFactory
    from penbal.service import DaemonServices, TCPBalancerService, relay_endpoints

    assert options.listen_spec is not None
    freeze_startup_objects(reactor)  # out of the collector's walks once running (garbage.py)
    pool = BackendPool(reactor, options.backend_specs)
    context = PolicyContext(clock=reactor, random=random.Random(),
                            clients=options["clients"], tracking=options["tracking"],
                            settings=policy_settings(options))
    try:
        policy = make_policy(options.policy_choice, context)
    except PolicyError as e:
        raise SystemExit(f"penbal: error: {e}") from None
    settings = Settings(
        timeout=options["timeout"],
        blacklist=options["blacklist"],
        max_connections=options["max-connections"],
        stubborn=bool(options["stubborn"]),
        emergency=Backend(options.emergency_spec, -1) if options.emergency_spec else None,
    )
    balancer = Balancer(pool, policy, settings)
    access = None
    if options["access-log"] is not None:
        import sys

        from penbal.accesslog import open_access_log

        try:
            access = open_access_log(reactor, options["access-log"],
                                     options["access-log-format"], sys.stdout)
        except OSError as e:
            raise SystemExit(f"penbal: error: cannot open the access log "
                             f"{options['access-log']!r}: {e.strerror}") from None
    config = RelayConfig(
        lean=options["relay-path"] == "lean",
        read_size=options["read-size"],
        first_byte_timeout=first_byte_timeout(options),
        queue_timeout=queue_timeout(options),
        queue_max=options["queue-max"],
    )
    edges = build_edges(options.edges, reactor, reactor)
    # How backends are reached, chosen once: direct connect on the lean path (host names
    # through connectTCP), connectTCP on the stock one; TLS around connectTCP's connections.
    connector: Connector = TwistedConnector(reactor)
    if config.lean:
        connector = DirectConnector(reactor, reactor, connector, config.read_size)
    if edges is not None and edges.backend_tls is not None:
        from penbal.edges.tls import TLSConnector

        connector = TLSConnector(TwistedConnector(reactor), edges.backend_tls)
    factory = RelayFactory(reactor, reactor, balancer, ConnectionLog(access=access), config,
                           connector)
    factory.edges = edges
    # Under twistd a start-up error must be an Exception for twistd to report it.
    top = DaemonServices() if options.launcher == "twistd" else MultiService()
    if access is not None:
        from penbal.accesslog import AccessLogService

        AccessLogService(access).setServiceParent(top)
    runtime = make_runtime(reactor, options, balancer, context, options.policy_choice, factory,
                           factory.connlog)  # before UDP: it shares the relay's client ACL
    runtime.queue = factory.queue
    if options.worker_fds is not None:  # a worker of --workers N: it relays, nothing else
        from penbal.workers.assembly import build_worker

        build_worker(reactor, options, runtime, factory).setServiceParent(top)
        return top
    build_operations(reactor, options, runtime).setServiceParent(top)  # -F, -C, --http, signals
    # Health checks (PyMySQL) and UDP are imported only when asked for, to keep memory low.
    if options["check"] is not None:
        from penbal.health.assembly import build_health_service

        port = options.listen_spec.port or 3306
        build_health_service(reactor, pool, options, port).setServiceParent(top)
    if options["udp"]:
        from penbal.udp.service import make_udp_service

        udp = make_udp_service(reactor, options, balancer, factory.connlog, factory.edges)
        runtime.relays.append(udp.relay)  # its sessions and figures in the status views
        udp.setServiceParent(top)
        return top
    if options.worker_address is not None:  # --workers N: this is the main process
        import os
        import sys

        from penbal.workers.assembly import build_worker_group

        build_worker_group(reactor, options, runtime, sys.executable, os.environ,
                           getattr(options, "parent", None)).setServiceParent(top)
        return top
    listen_tls = options.edges.listen_tls

    def endpoint_for(reactor: Any, description: str) -> IStreamServerEndpoint:
        if not listen_tls.active:
            endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
            return endpoint
        from penbal.edges.tlsserver import listen_endpoint  # pyOpenSSL: --tls-* were given

        return listen_endpoint(reactor, description, listen_tls)

    TCPBalancerService(reactor, options.listen_spec, factory,
                       stop_timeout=options["shutdown-timeout"],
                       endpoint_for=relay_endpoints(factory, endpoint_for)).setServiceParent(top)
    return top
