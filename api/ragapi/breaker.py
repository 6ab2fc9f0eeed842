"""A circuit breaker per provider: closed → open after N consecutive failures → one
half-open probe after the cooldown → closed on success, open again on failure.

Written here (about 60 lines) rather than taken from a library: the state is per
provider and per process, the clock must be injectable for tests, and the router needs
to ask "may I call?" before a call it may then skip for other reasons (budget, rate) —
purgatory's context-manager API wraps the call itself and keeps state in its own store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from ragapi.metrics import CIRCUIT_STATE


class State(IntEnum):  # the gauge's values
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int
    cooldown_seconds: float
    clock: Callable[[], float] = time.monotonic
    state: State = State.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _probing: bool = field(default=False, repr=False)

    def allow(self) -> bool:
        """May a call go to this provider now? In half-open, only one probe at a time."""
        if self.state is State.OPEN:
            if self.clock() - self.opened_at < self.cooldown_seconds:
                return False
            self._set(State.HALF_OPEN)
        if self.state is State.HALF_OPEN:
            if self._probing:
                return False
            self._probing = True
        return True

    def success(self) -> None:
        self.failures = 0
        self._probing = False
        self._set(State.CLOSED)

    def failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.state is State.HALF_OPEN or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()
            self._set(State.OPEN)

    def release(self) -> None:
        """A call that was allowed but not made (skipped for budget or rate): free the probe."""
        self._probing = False

    def _set(self, state: State) -> None:
        self.state = state
        CIRCUIT_STATE.labels(self.name).set(int(state))
