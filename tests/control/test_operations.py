# -*- test-case-name: tests.control.test_operations -*-
"""
Tests of the operations' assembly from the command line: -F, -C, --control-acl, --http.
"""

from __future__ import annotations

import io
import os
import random
import signal
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from penbal import service as service_module
from penbal.accesslog import open_access_log
from penbal.balancer import Balancer, Settings
from penbal.connlog import ConnectionLog
from penbal.control.operations import build_operations, make_runtime
from penbal.control.options import CONTROL_ACL_NUMBER
from penbal.interfaces import PolicyContext
from penbal.options import Options
from penbal.policies.registry import make_policy
from penbal.pool import BackendPool
from penbal.relay.listener import RelayFactory
from penbal.runtime import Runtime
from penbal.service import StartupError, hold_signals
from tests.occupancy import occupy


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class SignalReactor(MemoryReactorClock):
    """A memory reactor whose callFromThread (what signal handlers use) runs at once."""

    def callFromThread(self, f: Callable[..., object], *args: object, **kw: object) -> None:
        f(*args, **kw)


class AssemblyCase(SynchronousTestCase):
    def assemble(self, *args: str) -> tuple[Runtime, Any, MemoryReactorClock]:
        options = parse(*args)
        reactor = SignalReactor()
        for signum in (signal.SIGHUP, signal.SIGUSR1):  # starting the service installs them
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))
        pool = BackendPool(reactor, options.backend_specs)
        context = PolicyContext(clock=reactor, random=random.Random(0))
        settings = Settings(timeout=options["timeout"], blacklist=options["blacklist"])
        balancer = Balancer(pool, make_policy(options.policy_choice, context), settings)
        relay = RelayFactory(reactor, reactor, balancer, ConnectionLog())
        runtime = make_runtime(reactor, options, balancer, context, options.policy_choice, relay,
                               relay.connlog)
        return runtime, build_operations(reactor, options, runtime), reactor

    def config(self, text: str) -> str:
        path = str(self.mktemp())
        with open(path, "w") as f:
            f.write(text)
        return path


class OptionsTests(AssemblyCase):
    """The command line's operations options."""

    def test_defaults(self) -> None:
        """No control port, no HTTP, 30 s to shut down."""
        options: Any = parse("3306", "127.0.0.1:1")
        self.assertEqual((options.control_endpoint, options.http_endpoint), (None, None))
        self.assertEqual(options["shutdown-timeout"], 30.0)

    def test_values(self) -> None:
        """-C, --http, --control-acl and --shutdown-timeout are checked and stored."""
        options = parse("-C", "8888", "--http", "unix:/tmp/s", "--control-acl",
                        "127.0.0.1,127.10.0.0/16", "--shutdown-timeout", "5", "3306", "a:1")
        found: Any = options
        self.assertEqual(found.control_endpoint, "tcp:8888:interface=127.0.0.1")
        self.assertEqual(found.http_endpoint, "unix:/tmp/s:mode=600")
        self.assertEqual(len(found.control_acl_entries), 2)
        self.assertEqual(options["shutdown-timeout"], 5.0)

    def test_errors_are_one_line(self) -> None:
        """Mistakes stop with one line naming the option."""
        for args, fragment in [
            (["-C", "nowhere:x", "3306", "a:1"], "--control"),
            (["--control-acl", "127.10.0.1", "3306", "a:1"], "--control-acl needs --control"),
            (["-C", "1", "--control-acl", "banana", "3306", "a:1"], "--control-acl"),
            (["--shutdown-timeout", "-1", "3306", "a:1"], "--shutdown-timeout"),
            (["3306"], "missing BACKEND"),
        ]:
            with self.assertRaises(SystemExit) as caught:
                parse(*args)
            message = str(caught.exception.code)
            self.assertTrue(message.startswith("penbal: error: "), message)
            self.assertIn(fragment, message)
            self.assertNotIn("\n", message)

    def test_config_file_may_bring_the_backends(self) -> None:
        """With -F, backends need not be on the command line."""
        self.assertEqual(parse("-F", "x.cfg", "3306").backend_specs, [])


class BuildTests(AssemblyCase):
    """build_operations applies -F and wires the listeners."""

    def test_config_file_applied_over_command_line(self) -> None:
        """The file's commands come after the command line's options."""
        path = self.config("timeout 7\nadd 127.0.0.1:2\nserver 0 drain\n")
        runtime, _, _ = self.assemble("-F", path, "-t", "2", "-b", "9", "3306", "127.0.0.1:1")
        settings = runtime.balancer.settings
        self.assertEqual((settings.timeout, settings.blacklist), (7.0, 9.0))
        self.assertEqual([b.address for b in runtime.balancer.pool],
                         ["127.0.0.1:1", "127.0.0.1:2"])
        self.assertEqual(runtime.balancer.pool[0].admin.value, "drain")
        self.assertIsNotNone(runtime.reload)

    def test_bad_config_file_stops_startup(self) -> None:
        """A bad file stops start-up with one line naming file, line and reason."""
        path = self.config("stubborn\nfrobnicate\n")
        with self.assertRaises(StartupError) as caught:
            self.assemble("-F", path, "3306", "127.0.0.1:1")
        self.assertEqual(
            str(caught.exception),
            f"penbal: error: config file {os.path.abspath(path)} line 2: unknown command "
            "'frobnicate' "
            "(try 'help')",
        )

    def test_control_acl(self) -> None:
        """--control-acl fills access list 9 and makes it the control ACL."""
        runtime, _, _ = self.assemble("-C", "8888", "--control-acl", "127.0.0.1", "3306", "a:1")
        self.assertEqual(runtime.control_acl, CONTROL_ACL_NUMBER)
        self.assertTrue(runtime.admits_control("127.0.0.1"))
        self.assertFalse(runtime.admits_control("127.0.0.2"))
        self.assertEqual(runtime.base.control_acl, CONTROL_ACL_NUMBER)

    def test_listeners(self) -> None:
        """-C and --http listen when the service starts (loopback by default)."""
        runtime, service, reactor = self.assemble("-C", "8888", "--http", "8889", "3306", "a:1")
        service.startService()
        self.addCleanup(service.stopService)
        ports = sorted((port, interface) for port, _, _, interface in reactor.tcpServers)
        self.assertEqual(ports, [(8888, "127.0.0.1"), (8889, "127.0.0.1")])
        self.assertEqual(runtime.endpoints["control"], "tcp:8888:interface=127.0.0.1")

    def test_client_acl_settable_at_run_time(self) -> None:
        """With a control port, the relay checks the client ACL even if none was given."""
        runtime, _, _ = self.assemble("-C", "8888", "3306", "a:1")
        edges = runtime.relays[0].edges  # type: ignore[attr-defined]
        self.assertIsNotNone(edges)
        self.assertIs(edges.acls, runtime.acls)
        runtime.set_client_acl(4)
        self.assertEqual(edges.client_acl, 4)

    def test_reaper_removes_drained_udp_backends(self) -> None:
        """A backend removed while sessions (UDP) use it leaves once its count reaches 0."""
        runtime, service, reactor = self.assemble("3306", "a:1", "b:2")
        service.startService()
        self.addCleanup(service.stopService)
        pool = runtime.balancer.pool
        backend = pool[0]
        occupy(backend, 2)
        pool.retire(backend)
        reactor.advance(1.5)
        self.assertIn(backend, list(pool))
        occupy(backend, 0)
        reactor.advance(1.5)
        self.assertEqual([b.address for b in pool], ["b:2"])


class SignalTests(AssemblyCase):
    """SIGHUP and SIGUSR1 are handled from the start, with or without a config file."""

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def handler(self, signum: int) -> Callable[[int, object], object]:
        found = signal.getsignal(signum)
        self.assertTrue(callable(found), f"{signal.Signals(signum).name}: {found!r}")
        return cast(Callable[[int, object], object], found)

    def test_installed_before_anything_listens(self) -> None:
        """privilegedStartService (twistd listens there) installs both before the reactor runs."""
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
        _, service, reactor = self.assemble("3306", "127.0.0.1:1")
        service.privilegedStartService()
        self.handler(signal.SIGHUP)
        self.handler(signal.SIGUSR1)
        self.assertFalse(reactor.running)

    def test_hangup_without_config_file(self) -> None:
        """Without -F, SIGHUP logs one line and changes nothing."""
        runtime, service, _ = self.assemble("3306", "127.0.0.1:1")
        service.startService()
        self.addCleanup(service.stopService)
        self.handler(signal.SIGHUP)(signal.SIGHUP, None)
        said = [e for e in self.events if e.get("penbal_event") == "hangup-ignored"]
        self.assertEqual(len(said), 1)
        self.assertIn("no config file to re-read", said[0]["log_format"])
        self.assertEqual([b.address for b in runtime.balancer.pool], ["127.0.0.1:1"])

    def test_hangup_rereads_the_config_file(self) -> None:
        """With -F, SIGHUP re-reads the file."""
        path = self.config("conn_max 7\n")
        runtime, service, _ = self.assemble("-F", path, "3306", "127.0.0.1:1")
        service.startService()
        self.addCleanup(service.stopService)
        with open(path, "w") as f:
            f.write("conn_max 9\n")
        self.handler(signal.SIGHUP)(signal.SIGHUP, None)
        self.assertEqual(runtime.balancer.settings.max_connections, 9)
        self.assertEqual([e.get("penbal_event") for e in self.events
                          if e.get("penbal_event") == "reloaded"], ["reloaded"])

    def test_signals_reopen_the_access_log(self) -> None:
        """SIGHUP and SIGUSR1 both reopen the access log, with -F and without."""
        for args in ((), ("-F", self.config("conn_max 7\n"))):
            runtime, service, reactor = self.assemble(*args, "3306", "127.0.0.1:1")
            path = self.mktemp()
            runtime.connlog.access = open_access_log(reactor, path, "text", io.StringIO())
            service.startService()
            self.addCleanup(service.stopService)
            for number, signum in enumerate((signal.SIGHUP, signal.SIGUSR1)):
                os.rename(path, f"{path}.{number}")
                self.handler(signum)(signum, None)
                self.assertTrue(os.path.exists(path), (args, signum))
            runtime.connlog.access.close()

    def test_status_signal(self) -> None:
        """SIGUSR1 logs the status summary."""
        _, service, _ = self.assemble("3306", "127.0.0.1:1")
        service.startService()
        self.addCleanup(service.stopService)
        self.handler(signal.SIGUSR1)(signal.SIGUSR1, None)
        lines = [e["line"] for e in self.events if e.get("penbal_event") == "status"]
        self.assertEqual(len(lines), 2)
        self.assertIn("127.0.0.1:1", lines[1])

    def keep_handlers(self) -> None:
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))
        self.addCleanup(service_module._held.clear)

    def test_held_while_assembling(self) -> None:
        """makeService holds SIGHUP and SIGUSR1 first thing: one arriving then is kept."""
        from penbal.tap import makeService

        self.keep_handlers()
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
        makeService(parse("3306", "127.0.0.1:1"))
        signal.raise_signal(signal.SIGHUP)  # the default action would end this process
        self.assertEqual(service_module._held, {signal.SIGHUP})

    def test_held_signal_acted_on_when_running(self) -> None:
        """A SIGHUP held during assembly re-reads the file once the reactor runs."""
        self.keep_handlers()
        hold_signals((signal.SIGHUP,))
        path = self.config("conn_max 7\n")
        runtime, service, reactor = self.assemble("-F", path, "3306", "127.0.0.1:1")
        signal.raise_signal(signal.SIGHUP)  # after the file was read at assembly
        with open(path, "w") as f:
            f.write("conn_max 8\n")
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(runtime.balancer.settings.max_connections, 7)
        reactor.run()  # the memory reactor runs its when-running hooks, then stops
        self.assertEqual(runtime.balancer.settings.max_connections, 8)
        self.assertEqual(service_module._held, set())
