# -*- test-case-name: tests.udp.test_probe -*-
"""
The active UDP check (C{--udp-check HEX_PAYLOAD[:EXPECT_HEX]}): every interval, send the
payload to each backend from a fresh connected socket; no (matching) reply within the timeout,
or an ICMP error, marks the backend unfit; a matching reply marks it fit again.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from penbal.address import SpecError
from penbal.backend import Backend, Fitness, Health
from penbal.pool import BackendPool
from penbal.udp.resolve import HostResolver
from penbal.udp.sockets import BackendUnreachableError, Opener, UpstreamLink

log = Logger()

UDP_CHECK_FORM = "HEX_PAYLOAD[:EXPECT_HEX], hex digits; the reply must begin with EXPECT_HEX"
CHECK = "udp"


@dataclass(frozen=True)
class UDPCheckSpec:
    """What to send, and what a good reply starts with (any reply will do if None)."""

    payload: bytes
    expect: bytes | None = None

    def format(self) -> str:
        """Back to the command-line form."""
        text = self.payload.hex()
        return text if self.expect is None else f"{text}:{self.expect.hex()}"


def _hex(text: str, what: str, whole: str) -> bytes:
    try:
        return binascii.unhexlify(text.replace(" ", ""))
    except (binascii.Error, ValueError):
        raise SpecError(
            f"invalid {what} {text!r} in --udp-check {whole!r}: expected {UDP_CHECK_FORM}"
        ) from None


def parse_udp_check(text: str) -> UDPCheckSpec:
    """Parse C{--udp-check}; L{SpecError} (one line) when malformed."""
    payload_text, sep, expect_text = text.strip().partition(":")
    payload = _hex(payload_text, "payload", text)
    if not payload:
        raise SpecError(f"empty payload in --udp-check {text!r}: expected {UDP_CHECK_FORM}")
    if sep and not expect_text:
        raise SpecError(f"empty EXPECT_HEX in --udp-check {text!r}: expected {UDP_CHECK_FORM}")
    expect = _hex(expect_text, "EXPECT_HEX", text) if sep else None
    return UDPCheckSpec(payload, expect)


class _Attempt:
    """One probe of one backend: its socket, its timer, and what came back."""

    def __init__(self, probe: UDPProbe, backend: Backend, started: float) -> None:
        self.probe = probe
        self.backend = backend
        self.started = started
        self.link: UpstreamLink | None = None
        self.timer: IDelayedCall | None = None
        self.mismatch: bytes | None = None

    def datagram(self, data: bytes) -> None:
        expect = self.probe.spec.expect
        if expect is None or data.startswith(expect):
            self.probe._verdict(self, True, "")
        else:
            self.mismatch = data

    def unreachable(self, why: str) -> None:
        self.probe._verdict(self, False, why)


class UDPProbe:
    """Probes every backend of a pool on an interval and keeps its health up to date."""

    def __init__(
        self,
        clock: IReactorTime,
        pool: BackendPool,
        spec: UDPCheckSpec,
        open_link: Opener,
        resolver: HostResolver,
        interval: float = 2.0,
        timeout: float = 1.0,
        on_unfit: Callable[[Backend, str], None] | None = None,
    ) -> None:
        self._clock = clock
        self._pool = pool
        self.spec = spec
        self._open = open_link
        self._resolver = resolver
        self.interval = interval
        self.timeout = min(timeout, interval)
        self._on_unfit = on_unfit
        self._pending: dict[Backend, _Attempt] = {}
        self._loop: LoopingCall | None = None
        self.rounds = 0

    def start(self) -> None:
        """Probe now, then every interval."""
        loop = self._loop = LoopingCall(self.probe_all)
        loop.clock = self._clock
        loop.start(self.interval, now=True)

    def stop(self) -> None:
        """Stop probing and drop the probes in flight (no verdict)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        for attempt in list(self._pending.values()):
            self._forget(attempt)

    def probe_all(self) -> None:
        """Probe each backend that has no probe in flight."""
        self.rounds += 1
        for backend in list(self._pool):
            if backend not in self._pending:
                self._probe(backend)

    def _probe(self, backend: Backend) -> None:
        attempt = _Attempt(self, backend, self._clock.seconds())
        self._pending[backend] = attempt
        attempt.timer = self._clock.callLater(self.timeout, self._timed_out, attempt)
        host = backend.spec.host
        address = self._resolver.known(host)
        if address is not None:
            self._send(attempt, address)
            return
        self._resolver.resolve(host).addCallbacks(
            self._resolved, self._not_resolved, callbackArgs=(attempt,), errbackArgs=(attempt,)
        )

    def _resolved(self, address: str, attempt: _Attempt) -> None:
        if self._pending.get(attempt.backend) is attempt:
            self._send(attempt, address)

    def _not_resolved(self, reason: Failure, attempt: _Attempt) -> None:
        host = attempt.backend.spec.host
        self._verdict(attempt, False, f"cannot resolve {host}: {reason.getErrorMessage()}")

    def _send(self, attempt: _Attempt, address: str) -> None:
        try:
            attempt.link = self._open(address, attempt.backend.spec.port, attempt)
            attempt.link.send(self.spec.payload)
        except BackendUnreachableError as e:
            self._verdict(attempt, False, str(e))
        except OSError as e:
            log.warn("cannot open a socket to probe {backend}: {error}",
                     backend=attempt.backend.address, error=e.strerror or str(e))
            self._forget(attempt)

    def _timed_out(self, attempt: _Attempt) -> None:
        attempt.timer = None
        if attempt.mismatch is not None:
            why = f"UDP check: reply {attempt.mismatch[:16].hex()} does not match"
        else:
            why = f"UDP check: no reply within {self.timeout:g}s"
        self._verdict(attempt, False, why)

    def _forget(self, attempt: _Attempt) -> None:
        if self._pending.get(attempt.backend) is attempt:
            del self._pending[attempt.backend]
        if attempt.timer is not None and attempt.timer.active():
            attempt.timer.cancel()
        attempt.timer = None
        if attempt.link is not None:
            attempt.link.close()
            attempt.link = None

    def _verdict(self, attempt: _Attempt, fit: bool, why: str) -> None:
        if self._pending.get(attempt.backend) is not attempt:
            return
        self._forget(attempt)
        backend = attempt.backend
        now = self._clock.seconds()
        health = backend.health
        if fit:
            details = {"check": CHECK, "rtt": now - attempt.started}
            if health.fitness is Fitness.UNFIT and health.details.get("check") == CHECK:
                backend.health = Health(Fitness.FIT, "", now, details)
                log.info("UDP backend {backend} answers its check again: fit",
                         backend=backend.address)
            elif health.fitness is not Fitness.UNFIT:
                health.details.update(details)
            if backend.is_blacklisted(now):
                backend.clear_blacklist()
            return
        if health.fitness is Fitness.UNFIT:
            if health.details.get("check") == CHECK:
                health.reason = why
            return
        backend.health = Health(Fitness.UNFIT, why, now, {"check": CHECK})
        log.warn("UDP backend {backend} is unfit: {why}", backend=backend.address, why=why)
        if self._on_unfit is not None:
            self._on_unfit(backend, why)
