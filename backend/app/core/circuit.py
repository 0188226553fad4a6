"""A circuit breaker: stop calling a provider that keeps failing, and answer 503 at once.

While a provider is down, every call would otherwise wait out its timeouts and retries before
failing. After `failure_threshold` failures in a row the circuit opens: calls fail at once with
`CircuitOpenError` (503 with `Retry-After`) for `open_seconds`. Then calls go through again;
one success closes the circuit, one more failure opens it for another period.

State is per process, which is enough to shed load from each process.
"""

import math
import time
from collections.abc import Callable

from backend.app.core.errors import CircuitOpenError


class CircuitBreaker:
    """Count consecutive failures of one provider and refuse calls while open."""

    def __init__(
        self,
        *,
        name: str,
        failure_threshold: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0

    def check(self) -> None:
        """Let a call through, or refuse it while the circuit is open.

        Raises:
            CircuitOpenError: the circuit is open; `retry_after` says for how long.
        """
        remaining = self._open_until - self._clock()
        if remaining > 0:
            raise CircuitOpenError(
                f"{self.name} is failing; calls are paused. Retry later.",
                retry_after=math.ceil(remaining),
            )

    def record_success(self) -> None:
        """Close the circuit: the provider answered."""
        self._failures = 0
        self._open_until = 0.0

    def record_failure(self) -> None:
        """Count a failure; open the circuit once there are enough in a row."""
        self._failures += 1
        if self._failures >= self._threshold:
            self._open_until = self._clock() + self._open_seconds
