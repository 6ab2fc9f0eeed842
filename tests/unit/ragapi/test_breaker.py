"""The circuit breaker's state machine, with a fake clock."""

from __future__ import annotations

from ragapi.breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_and_probes_after_cooldown() -> None:
    clock = Clock()
    b = CircuitBreaker("p", failure_threshold=3, cooldown_seconds=10, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state is State.CLOSED
    assert b.allow()
    b.failure()
    assert b.state is State.OPEN and not b.allow()
    clock.now += 9.9
    assert not b.allow()
    clock.now += 0.2
    assert b.allow() and b.state is State.HALF_OPEN
    assert not b.allow()  # one probe at a time
    b.success()
    assert b.state is State.CLOSED and b.failures == 0 and b.allow()


def test_failed_probe_reopens_and_success_resets_the_count() -> None:
    clock = Clock()
    b = CircuitBreaker("p", failure_threshold=2, cooldown_seconds=5, clock=clock)
    b.failure()
    b.success()
    b.failure()
    assert b.state is State.CLOSED  # not consecutive
    b.failure()
    assert b.state is State.OPEN
    clock.now += 5
    assert b.allow()
    b.failure()
    assert b.state is State.OPEN and not b.allow()
    clock.now += 5
    assert b.allow()
    b.release()  # allowed but skipped: the probe slot frees
    assert b.allow()
