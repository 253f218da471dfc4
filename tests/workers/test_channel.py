# -*- test-case-name: tests.workers.test_channel -*-
"""
Tests of the AMP commands between the main process and its workers.
"""

from __future__ import annotations

from twisted.protocols import amp
from twisted.trial.unittest import SynchronousTestCase

from penbal.workers.channel import CHUNK, PushState, Report


class DocumentTests(SynchronousTestCase):
    def roundtrip(self, command: type[amp.Command], **arguments: object) -> dict[str, object]:
        box = command.makeArguments(arguments, None)
        wire = amp.AmpBox(box).serialize()
        parsed = amp.AmpBox(dict(_boxes(wire)))
        result: dict[str, object] = command.parseArguments(parsed, None)
        return result

    def test_small(self) -> None:
        """A configuration and a state list come back as sent."""
        state = [{"address": "127.0.0.1:1", "admin": "drain", "blacklisted_until": 12.5}]
        self.assertEqual(self.roundtrip(PushState, config="policy sticky\n", state=state),
                         {"config": "policy sticky\n", "state": state})

    def test_longer_than_one_value(self) -> None:
        """A document longer than AMP's 65,535-byte value is spread over several keys."""
        backends = {f"10.0.{n // 256}.{n % 256}:3306": {"counters": {"total": n}}
                    for n in range(3000)}
        figures = {"active": 1, "accepted": 2, "backends": backends}
        box = Report.makeArguments({"figures": figures}, None)
        self.assertGreater(len(box), 2)
        self.assertTrue(all(len(value) <= CHUNK for value in box.values()))
        self.assertEqual(self.roundtrip(Report, figures=figures), {"figures": figures})


def _boxes(wire: bytes) -> list[tuple[bytes, bytes]]:
    """The keys and values of one serialized AMP box (16-bit lengths, an empty key ends it)."""
    pairs: list[tuple[bytes, bytes]] = []
    at = 0
    while True:
        size = int.from_bytes(wire[at:at + 2], "big")
        key = wire[at + 2:at + 2 + size]
        at += 2 + size
        if not key:
            return pairs
        size = int.from_bytes(wire[at:at + 2], "big")
        pairs.append((key, wire[at + 2:at + 2 + size]))
        at += 2 + size
