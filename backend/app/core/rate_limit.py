"""Fixed-window failure counters for brute-force protection (login attempts).

`MemoryFailureCounter` serves one process; `RedisFailureCounter` shares the counts between
every process that points at the same `REDIS_URL`. Both answer the same two questions:
how long is this key blocked for, and record one more failure.
"""

import math
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.app.core.errors import ServiceUnavailableError


class FailureCounter(Protocol):
    """Counts failures per key within a window and blocks keys that reach the limit."""

    async def blocked_for(self, keys: list[str]) -> int:
        """Return seconds until every key in `keys` may try again (0 when none is blocked)."""
        ...

    async def record_failure(self, keys: list[str]) -> None:
        """Count one failure against each key."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryFailureCounter:
    """In-process counter; the default when `REDIS_URL` is not set."""

    def __init__(self, *, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window = window_seconds
        self._windows: dict[str, tuple[float, int]] = {}

    async def blocked_for(self, keys: list[str]) -> int:
        """Return seconds until every key may try again (0 when none is blocked)."""
        now = time.monotonic()
        waits = [0.0]
        for key in keys:
            started, count = self._windows.get(key, (now, 0))
            if count >= self.limit and now - started < self.window:
                waits.append(started + self.window - now)
        return math.ceil(max(waits))

    async def record_failure(self, keys: list[str]) -> None:
        """Count one failure against each key."""
        now = time.monotonic()
        if len(self._windows) > 10_000:
            self._forget_expired(now)
        for key in keys:
            started, count = self._windows.get(key, (now, 0))
            if now - started >= self.window:
                started, count = now, 0
            self._windows[key] = (started, count + 1)

    async def close(self) -> None:
        """Nothing to release."""

    def _forget_expired(self, now: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}


class RedisFailureCounter:
    """Counter shared through Redis: INCR a key that expires with its window."""

    def __init__(self, redis: Redis, *, limit: int, window_seconds: int) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds

    async def blocked_for(self, keys: list[str]) -> int:
        """Return seconds until every key may try again (0 when none is blocked).

        Raises:
            ServiceUnavailableError: Redis did not answer.
        """
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(_redis_key(key))
                    pipe.ttl(_redis_key(key))
                results = await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailableError("The rate limiter is unavailable.") from exc
        waits = [0]
        for count, ttl in zip(results[::2], results[1::2], strict=True):
            if count is not None and int(count) >= self.limit:
                waits.append(ttl if ttl > 0 else self.window)
        return max(waits)

    async def record_failure(self, keys: list[str]) -> None:
        """Count one failure against each key.

        Raises:
            ServiceUnavailableError: Redis did not answer.
        """
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.incr(_redis_key(key))
                    pipe.expire(_redis_key(key), self.window, nx=True)
                await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailableError("The rate limiter is unavailable.") from exc

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self.redis.aclose()


def _redis_key(key: str) -> str:
    return f"ratelimit:{key}"


def create_failure_counter(
    redis_url: str | None, *, limit: int, window_seconds: int
) -> FailureCounter:
    """Return a Redis-backed counter when `redis_url` is set, else an in-memory one."""
    if redis_url:
        redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        return RedisFailureCounter(redis, limit=limit, window_seconds=window_seconds)
    return MemoryFailureCounter(limit=limit, window_seconds=window_seconds)
