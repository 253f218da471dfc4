# -*- test-case-name: tests.ha.test_pair -*-
"""
An HA pair: two penbal instances with C{--policy galera-writer} in front of the real Galera
cluster, keepalived (VRRPv3, 0.1 s adverts) moving a virtual IP between them on penbal's
C{GET /health}.  Both name the same writer; when the active penbal is killed (SIGKILL) or
frozen (SIGSTOP), new connections through the virtual IP succeed again within the bound, and
still reach the same writer.
"""

from __future__ import annotations

import contextlib
import signal

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.process import wait_for
from tests.ha import keepalived
from tests.ha.namespaces import HOSTS, VIP
from tests.ha.outage import Outage, measure
from tests.ha.pair import SQL_PORT, Pair

# The goal is 1 s with 0.1 s adverts; the assertion leaves room for a loaded CI machine.
BOUND = 1.5


def report(what: str, outage: Outage) -> None:
    """Print the measured figures (the test log keeps them)."""
    first = "-" if outage.first_failure is None else f"+{outage.first_failure:.3f}s"
    back = "never" if outage.recovered is None else f"+{outage.recovered:.3f}s"
    print(f"\n[ha] {what}: new connections through the VIP failed from {first} and "
          f"succeeded again from {back} after the signal ({outage.failed} of "
          f"{outage.attempts} attempts failed, one every 0.02s; failed before the signal: "
          f"{outage.failed_before}, after the recovery: {outage.failed_later})")


def attempts(*outcomes: tuple[float, str]) -> list[dict[str, object]]:
    """Attempts starting at the given times, each 10 ms long, with their errors."""
    return [{"start": t, "end": t + 0.01, "error": e} for t, e in outcomes]


class OutageTests(SynchronousTestCase):
    """Reading a failover from the client's attempts."""

    def test_recovery(self) -> None:
        """Failures from the fault on, then successes for good: both times from the fault."""
        seen = attempts((9.9, ""), (10.1, "refused"), (10.3, "refused"),
                        *((10.5 + i / 10, "") for i in range(8)))
        outage = measure(seen, 10.0)
        self.assertAlmostEqual(outage.first_failure or 0, 0.1)
        self.assertAlmostEqual(outage.recovered or 0, 0.51)
        self.assertEqual((outage.failed, outage.attempts, outage.failed_before,
                          outage.failed_later), (2, 10, 0, 0))

    def test_lone_success_is_not_recovery(self) -> None:
        """A success between failures does not end the outage."""
        seen = attempts((10.1, "timeout"), (10.2, ""), (10.3, "timeout"),
                        *((10.4 + i / 10, "") for i in range(8)))
        self.assertAlmostEqual(measure(seen, 10.0).recovered or 0, 0.41)
        self.assertEqual(measure(seen, 10.0).failed, 2)

    def test_late_failure_apart(self) -> None:
        """A failure long after the recovery is counted apart, and so is one before."""
        seen = attempts((9.5, "timeout"), (10.1, "refused"),
                        *((10.2 + i / 10, "") for i in range(8)), (11.1, "timeout"), (11.2, ""))
        outage = measure(seen, 10.0)
        self.assertAlmostEqual(outage.recovered or 0, 0.21)
        self.assertEqual((outage.failed, outage.failed_before, outage.failed_later), (1, 1, 1))

    def test_never(self) -> None:
        """No stable run of successes after the failures: never recovered."""
        seen = attempts((10.1, "refused"), (10.2, ""), (10.3, "refused"))
        self.assertIsNone(measure(seen, 10.0).recovered)


class ConfigTests(SynchronousTestCase):
    """The keepalived configuration the tests run is the one the docs show."""

    def test_rendered_from_docs(self) -> None:
        """Rendering the docs' example for lb2 changes only the host's own values."""
        text = keepalived.render(keepalived.LB2, keepalived.HEALTH_SCRIPT, keepalived.EXAMPLES
                                 / "lb2.track", VIP, 8080)
        self.assertIn("state BACKUP", text)
        self.assertIn("priority 100", text)
        self.assertIn(f"{VIP}/24 dev eth0", text)
        self.assertIn("advert_int 0.1", text)
        self.assertNotIn("MASTER", text)


class PairTests(SynchronousTestCase):
    """Two instances, one answer, one virtual IP."""

    def setUp(self) -> None:
        self.pair = Pair(self)

    def agree(self) -> str:
        """Both instances, asked directly, name the node of lowest wsrep_local_index."""
        expected = self.pair.expected_writer()
        addresses = [f"{HOSTS[host]}:{SQL_PORT}" for host in ("lb1", "lb2")]
        agreed = dict.fromkeys(addresses, expected)
        # Until the first check round the index is unknown and the address decides.
        with contextlib.suppress(AssertionError):
            wait_for(lambda: self.pair.writers(*addresses) == agreed, 10,
                     "both instances to name the writer")
        self.assertEqual(self.pair.writers(*addresses), agreed, self.pair.logs())
        print(f"\n[ha] writer: lb1 (nodes 1,2,3) and lb2 (nodes 3,2,1) both name {expected}")
        return expected

    def failover(self, sig: signal.Signals, what: str) -> None:
        writer = self.agree()
        self.pair.start_keepalived()
        # The VIP answers as soon as either host holds it; lb1 (priority 150) takes it over
        # from lb2 when both started at once on a loaded machine: wait for that, bounded.
        with contextlib.suppress(AssertionError):
            wait_for(lambda: self.pair.vip_holder() == ["lb1"], 10, "lb1 to hold the VIP")
        self.assertEqual(self.pair.vip_holder(), ["lb1"], self.pair.logs())
        self.assertEqual(self.pair.writers(f"{VIP}:{SQL_PORT}"), {f"{VIP}:{SQL_PORT}": writer})
        outage = self.pair.failover(sig)
        report(what, outage)
        self.assertIsNotNone(outage.first_failure, "no new connection failed after the signal")
        self.assertLessEqual(outage.recovered if outage.recovered is not None else BOUND + 1,
                             BOUND, self.pair.logs())
        self.assertEqual(self.pair.vip_holder(), ["lb2"])
        self.assertEqual(self.pair.writers(f"{VIP}:{SQL_PORT}"), {f"{VIP}:{SQL_PORT}": writer})

    def test_sigkill(self) -> None:
        """The active penbal killed: the VIP moves to the other within the bound."""
        self.failover(signal.SIGKILL, "SIGKILL of the active penbal")

    def test_sigstop(self) -> None:
        """The active penbal frozen: its /health stops answering and the VIP moves."""
        self.failover(signal.SIGSTOP, "SIGSTOP of the active penbal")
