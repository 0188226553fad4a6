"""The circuit breaker opens after failures in a row, pauses calls, and closes on success."""

import pytest

from backend.app.core.circuit import CircuitBreaker
from backend.app.core.errors import CircuitOpenError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(name="Stripe", failure_threshold=threshold, open_seconds=30, clock=clock)


def test_it_stays_closed_below_the_threshold_and_a_success_resets_the_count() -> None:
    clock = Clock()
    circuit = breaker(clock)
    circuit.record_failure()
    circuit.record_failure()
    circuit.record_success()
    circuit.record_failure()
    circuit.record_failure()
    circuit.check()  # 2 in a row, not 3: still closed


def test_it_opens_after_the_threshold_and_says_when_to_retry() -> None:
    clock = Clock()
    circuit = breaker(clock)
    for _ in range(3):
        circuit.record_failure()
    clock.now += 10.5
    with pytest.raises(CircuitOpenError) as caught:
        circuit.check()
    assert caught.value.retry_after == 20
    assert caught.value.code == "integration_unavailable"
    assert "Stripe" in caught.value.message


def test_after_the_pause_one_failure_reopens_it_and_one_success_closes_it() -> None:
    clock = Clock()
    circuit = breaker(clock)
    for _ in range(3):
        circuit.record_failure()
    clock.now += 30
    circuit.check()  # the trial call goes through
    circuit.record_failure()
    with pytest.raises(CircuitOpenError):
        circuit.check()
    clock.now += 30
    circuit.check()
    circuit.record_success()
    circuit.record_failure()
    circuit.check()  # closed again: one failure is not enough
