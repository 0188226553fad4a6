"""What the worker runs: deliveries, one per integration whose side effects wait in an outbox.

A request never calls a provider for a side effect: it adds a row to that integration's outbox
table in its own unit of work, and a delivery performs it later. Each round a delivery claims
due rows with a lease (one owner per row), performs them through its provider client and
records what happened (sent, retried with backoff, or failed). The worker loop
(`worker/loop.py`) knows nothing else of them.

- SMS (`worker/sms_worker.py::SmsWorker`) is the first, with rules of its own (Twilio has no
  idempotency key, so an unknown outcome is looked up, never re-sent blindly).
- Any other integration builds one on `OutboxDelivery` (`worker/outbox_delivery.py`): an
  outbox table made with `models/outbox.py::OutboxMixin` and one `send` hook.
- `worker/registry.py::DELIVERIES` lists every delivery the worker runs, by name;
  `make integration NAME=...` adds its line there.
"""

import random
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core.config import Settings


class Delivery(Protocol):
    """One outbox the worker drains: claim due rows, perform them, record the outcomes."""

    name: str

    async def run_once(self, *, limit: int | None = None) -> int:
        """Claim due rows, perform them concurrently, record the outcomes; return how many.

        Args:
            limit: rows to claim at most (default WORKER_CONCURRENCY).
        """
        ...

    async def publish_depth(self) -> None:
        """Publish how many rows wait in the outbox, by status (a metric)."""
        ...

    async def aclose(self) -> None:
        """Release the provider client the delivery opened."""
        ...


# Builds a delivery for a worker: its settings and its sessions (which act as `worker`).
DeliveryFactory = Callable[[Settings, async_sessionmaker[AsyncSession]], Delivery]


def backoff_seconds(
    attempts: int, *, base: float, ceiling: float, retry_after: float | None = None
) -> float:
    """The wait before the next try after `attempts` tries: exponential, jittered, capped.

    Args:
        attempts: tries made so far (1 after the first).
        base: the wait after the first try, before jitter.
        ceiling: the longest wait, before jitter.
        retry_after: the provider's Retry-After, in seconds: never sooner than that.

    Returns:
        min(ceiling, base * 2^(attempts-1)), halved plus up to half again at random, and at
        least `retry_after`.
    """
    longest = min(ceiling, base * 2.0 ** max(attempts - 1, 0))
    jittered = longest / 2 + random.uniform(0, longest / 2)  # noqa: S311 - not security
    return max(jittered, retry_after or 0.0)
