# -*- test-case-name: tests.workers.test_state -*-
"""
Tests of the state the main process pushes to its workers and the figures it sums from them.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState, Fitness
from penbal.runtime import Runtime
from penbal.workers.state import WorkerTotals, apply_state, state_message, worker_figures
from tests.control.fixtures import connect, make_runtime

THREE = ("127.0.0.1:4000", "127.0.0.1:4001", "127.0.0.1:4002")


def table(runtime: Runtime) -> list[tuple[str, str, str, float, int]]:
    """What a worker must agree on: address, admin, fitness, blacklisting, weight."""
    return [(b.address, b.admin.value, b.health.fitness.value, b.blacklisted_until,
             b.spec.weight) for b in runtime.balancer.pool]


class PushTests(SynchronousTestCase):
    """A worker applies the main process's state."""

    def setUp(self) -> None:
        self.main, _ = make_runtime(THREE)
        self.worker, self.harness = make_runtime(THREE)
        self.pushed: dict[object, float] = {}

    def push(self) -> list[str]:
        config, state = state_message(self.main)
        return apply_state(self.worker, config, state, self.pushed)  # type: ignore[arg-type]

    def test_same_state_changes_nothing(self) -> None:
        """A worker started with the main process's command line has nothing to change."""
        self.assertEqual(self.push(), [])
        self.assertEqual(table(self.worker), table(self.main))

    def test_admin_health_and_blacklist(self) -> None:
        """Drain, down, an unfit health verdict and a blacklisting all reach the worker."""
        pool = self.main.balancer.pool
        pool[0].admin = AdminState.DRAIN
        pool[1].health.fitness = Fitness.UNFIT
        pool[1].health.reason = "wsrep_ready OFF"
        pool[2].blacklist(self.main.now(), 30, "connect refused")
        self.push()
        self.assertEqual(table(self.worker), table(self.main))
        self.assertEqual(self.worker.balancer.pool[1].health.reason, "wsrep_ready OFF")
        self.assertEqual(self.worker.balancer.pool[2].blacklist_reason, "connect refused")

    def test_every_policy_pushes(self) -> None:
        """Whatever policy plugin the main process runs, a worker applies its push (until
        b8f4c1c, a worker refused every push naming galera-writer, so it never heard of a
        health verdict or a drain)."""
        from penbal.policies.registry import find_policies

        names = sorted(find_policies())
        self.assertIn("galera-writer", names)
        for name in names:
            main, _ = make_runtime(THREE, policy=name)
            worker, _ = make_runtime(THREE)
            main.balancer.pool[2].admin = AdminState.DRAIN
            config, state = state_message(main)
            apply_state(worker, config, state, {})  # raises if the worker refuses it
            self.assertEqual(worker.policy.name, name)
            self.assertEqual(table(worker), table(main), name)

    def test_view_index_reaches_the_worker(self) -> None:
        """The Galera view index the main process's check read reaches the worker, so that
        galera-writer ranks the worker's nodes as a single penbal does (by index, not by
        address); an index the check no longer reads is dropped there too."""
        from penbal.policies.galera_writer import VIEW_INDEX, writer_order

        pool, worker = self.main.balancer.pool, self.worker.balancer.pool
        for backend, index in zip(pool, ("2", "0", "1"), strict=True):
            backend.health.details[VIEW_INDEX] = index
        self.assertEqual(writer_order(list(worker))[0].address, THREE[0])  # before: address
        self.push()
        ranked = [backend.address for backend in writer_order(list(worker))]
        self.assertEqual(ranked, [THREE[1], THREE[2], THREE[0]])
        self.assertEqual(ranked, [backend.address for backend in writer_order(list(pool))])
        del pool[1].health.details[VIEW_INDEX]
        self.push()
        self.assertNotIn(VIEW_INDEX, worker[1].health.details)
        self.assertEqual(writer_order(list(worker))[0].address, THREE[2])

    def test_unfit_closes_with_on_unfit_close(self) -> None:
        """With --on-unfit close, the worker closes its connections to a backend the main
        process's health check found unfit; without it, they stay."""
        front = connect(self.harness)
        main_backend = self.main.balancer.pool[front.backend.index]
        main_backend.health.fitness = Fitness.UNFIT
        main_backend.health.reason = "no answer"
        config, state = state_message(self.main)
        apply_state(self.worker, config, state, {})
        self.assertIn(front, self.worker.balancer.pool[front.backend.index].live)
        self.assertFalse(front.transport.disconnecting)
        other = self.worker.balancer.pool[front.backend.index]
        other.health.fitness = Fitness.FIT  # fit again in the worker, then unfit, closing
        apply_state(self.worker, config, state, {}, close_unfit=True)
        self.assertEqual(front.ended_by, "backend unfit: no answer")

    def test_up_again(self) -> None:
        """A backend set up again after a drain is up in the worker too (a config file that
        does not mention it would keep it drained)."""
        self.main.balancer.pool[0].admin = AdminState.DRAIN
        self.push()
        self.main.balancer.pool[0].admin = AdminState.UP
        self.push()
        self.assertEqual(self.worker.balancer.pool[0].admin, AdminState.UP)

    def test_add_remove_and_weight(self) -> None:
        """Backends added, removed and re-weighted in the main process are in the worker."""
        from penbal.address import parse_backend

        pool = self.main.balancer.pool
        pool.add(parse_backend("127.0.0.1:4003:0:0:7", None))
        pool.remove(pool[0])
        self.push()
        self.assertEqual(table(self.worker), table(self.main))
        self.assertEqual(self.worker.balancer.pool[2].spec.weight, 7)

    def test_removed_busy_backend_drains_out(self) -> None:
        """A backend removed while the worker relays through it drains out of its table."""
        front = connect(self.harness)
        busy = front.backend
        main_backend = self.main.balancer.pool[busy.index]
        self.main.balancer.pool.remove(main_backend)
        self.push()
        self.assertIn(busy, self.worker.balancer.pool.retiring)

    def test_own_blacklisting_reported_until_pushed_back(self) -> None:
        """A worker reports a blacklisting it made itself, until the main process pushes it."""
        self.push()
        backend = self.worker.balancer.pool[1]
        backend.blacklist(self.worker.now(), 30, "connect timed out")
        figures = worker_figures(self.worker.balancer.pool, 0, 0, self.pushed)  # type: ignore[arg-type]
        listed = figures["backends"][backend.address]["blacklist"]
        self.assertEqual(listed, [backend.blacklisted_until, "connect timed out"])
        totals = WorkerTotals(self.main.balancer.pool)
        totals.reported(1, figures)
        self.assertEqual(self.main.balancer.pool[1].blacklisted_until, backend.blacklisted_until)
        self.push()
        again = worker_figures(self.worker.balancer.pool, 0, 0, self.pushed)  # type: ignore[arg-type]
        self.assertIsNone(again["backends"][backend.address]["blacklist"])


def figures(active: int, accepted: int,
            per_backend: dict[str, dict[str, int]]) -> dict[str, Any]:
    """A worker's report."""
    return {"active": active, "accepted": accepted,
            "backends": {address: {"counters": counters, "blacklist": None}
                         for address, counters in per_backend.items()}}


class ListedTests(SynchronousTestCase):
    def test_listed_connections(self) -> None:
        """A worker lists its live connections (client, backend, bytes, start), at most
        LISTED of them."""
        from penbal.workers.state import LISTED

        runtime, harness = make_runtime()
        fronts = [connect(harness, port=5000 + n) for n in range(3)]
        front = fronts[0]
        figures = worker_figures(runtime.balancer.pool, 3, 3, {},
                                 harness.factory.fronts)
        self.assertIn(["127.0.0.2", 5000, front.backend.address, front.bytes_in,
                       front.bytes_out, front.started], figures["connections"])
        many = worker_figures(runtime.balancer.pool, 0, 0, {},
                              fronts * LISTED)
        self.assertEqual(len(many["connections"]), LISTED)


class EndedTests(SynchronousTestCase):
    """Connections that ended in a worker reach the main process's recent ones."""

    def test_reported_and_kept(self) -> None:
        """A worker lists the records it is given; the main process keeps them, in order,
        with its own recent ones, without writing them to its access log."""
        from penbal.connlog import ConnectionLog, ConnectionRecord

        worker, _ = make_runtime()
        ended = [ConnectionRecord(f"127.0.0.{n}:5000", "127.0.0.1:4000", n, 2 * n, 100.0 + n,
                                  0.25, "client", n % 2 == 0) for n in (2, 3)]
        report = worker_figures(worker.balancer.pool, 0, 2, {}, (), ended)
        self.assertEqual(report["ended"][0],
                         ["127.0.0.2:5000", "127.0.0.1:4000", 2, 4, 102.0, 0.25, "client", True])
        main, _ = make_runtime()
        written: list[ConnectionRecord] = []

        class Sink:
            def write(self, record: ConnectionRecord) -> None:
                written.append(record)

            def reopen(self) -> None:
                pass

        connlog = ConnectionLog(access=Sink())
        totals = WorkerTotals(main.balancer.pool, None, connlog)
        totals.reported(1, report)
        self.assertEqual(list(connlog.recent), ended)
        self.assertEqual(written, [])
        totals.reported(1, worker_figures(worker.balancer.pool, 0, 2, {}))  # none new
        self.assertEqual(list(connlog.recent), ended)


class QueueTests(SynchronousTestCase):
    """The workers' wait queues, summed in the main process's views."""

    def test_reported(self) -> None:
        """A worker reports its queue: waiting now, held, served, expired, refused; none
        without a queue."""
        from penbal.relay.waitqueue import ClientQueue

        runtime, harness = make_runtime()
        self.assertIsNone(worker_figures(runtime.balancer.pool, 0, 0, {})["queue"])
        queue = ClientQueue(harness.reactor, runtime.balancer, lambda front, order: None,
                            2.0, 10)
        queue.figures.held, queue.figures.expired, queue.figures.refused = 5, 3, 1
        report = worker_figures(runtime.balancer.pool, 0, 0, {}, queue=queue)
        self.assertEqual(report["queue"], [0, 5, 0, 3, 1])

    def test_summed(self) -> None:
        """Two workers' queues add up, a worker that ended keeps its figures (not its
        waiting clients), and the settings are the main process's."""
        from penbal.workers.state import workers_queue

        main, _ = make_runtime()
        totals = WorkerTotals(main.balancer.pool)

        class Own:
            timeout, limit = 2.5, 100

        queue = workers_queue(totals, Own())  # type: ignore[arg-type]
        assert queue is not None
        totals.reported(1, {**figures(0, 0, {}), "queue": [2, 7, 4, 1, 0]})
        totals.reported(2, {**figures(0, 0, {}), "queue": [1, 3, 1, 1, 2]})
        totals.reported(3, {**figures(0, 0, {}), "queue": None})  # a worker without one
        self.assertEqual((len(queue), queue.timeout, queue.limit), (3, 2.5, 100))
        summed = queue.figures
        self.assertEqual((summed.held, summed.served, summed.expired, summed.refused),
                         (10, 5, 2, 2))
        totals.ended(1)
        self.assertEqual(len(queue), 1)
        self.assertEqual(queue.figures.held, 10)
        self.assertIsNone(workers_queue(totals, None))


class TotalsTests(SynchronousTestCase):
    """The main process sums its workers' reports."""

    def setUp(self) -> None:
        self.main, _ = make_runtime(THREE)
        self.totals = WorkerTotals(self.main.balancer.pool)

    def test_summed(self) -> None:
        """Two workers' counters add up on each backend; connections too."""
        self.totals.reported(1, figures(2, 10, {"127.0.0.1:4000": {"active": 2, "total": 7}}))
        self.totals.reported(2, figures(1, 5, {"127.0.0.1:4000": {"active": 1, "total": 3},
                                               "127.0.0.1:4001": {"total": 2}}))
        pool = self.main.balancer.pool
        self.assertEqual((pool[0].counters.active, pool[0].counters.total), (3, 10))
        self.assertEqual(pool[1].counters.total, 2)
        self.assertEqual((self.totals.active, self.totals.accepted), (3, 15))

    def test_latest_report_replaces(self) -> None:
        """A worker's new report replaces its previous one (counted once)."""
        self.totals.reported(1, figures(1, 1, {"127.0.0.1:4000": {"total": 1}}))
        self.totals.reported(1, figures(0, 4, {"127.0.0.1:4000": {"total": 4}}))
        self.assertEqual(self.main.balancer.pool[0].counters.total, 4)
        self.assertEqual(self.totals.accepted, 4)

    def test_ended_worker_keeps_counts(self) -> None:
        """A worker that ended keeps its totals, not its live connections."""
        self.totals.reported(1, figures(2, 9, {"127.0.0.1:4000": {"active": 2, "total": 9,
                                                                 "bytes_to_backend": 50}}))
        self.totals.ended(1)
        counters = self.main.balancer.pool[0].counters
        self.assertEqual((counters.active, counters.total, counters.bytes_to_backend), (0, 9, 50))
        self.assertEqual((self.totals.active, self.totals.accepted), (0, 9))

    def test_later_blacklisting_adopted_only(self) -> None:
        """A worker's blacklisting that ends later than the main process's is adopted."""
        backend = self.main.balancer.pool[0]
        backend.blacklisted_until = 500.0
        report = figures(0, 0, {backend.address: {}})
        report["backends"][backend.address]["blacklist"] = [400.0, "old"]
        self.totals.reported(1, report)
        self.assertEqual(backend.blacklisted_until, 500.0)
        report["backends"][backend.address]["blacklist"] = [600.0, "refused"]
        self.totals.reported(1, report)
        self.assertEqual((backend.blacklisted_until, backend.blacklist_reason), (600.0, "refused"))
