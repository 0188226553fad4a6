"""A delivery for any integration: claim due outbox rows, `send` each, record what happened.

An integration subclasses `OutboxDelivery` with its outbox model (`models/outbox.py`) and
one method, `send(row) -> provider id`, which calls its client; `make integration` writes
one. The rules, the same for every such delivery:
- Exactly one owner per row: a claim takes due rows with `FOR UPDATE SKIP LOCKED` (SQLite
  runs one writer at a time), sets them `sending` with a lease (WORKER_LEASE_SECONDS) and a
  token, and every later write names that token. A row whose lease ran out (its worker died
  or hung) is due again.
- A repeat is harmless because every try of a row sends its `idempotency_key`: the
  provider recognises a second try of something it already did. Providers without such a
  key need the lookup SMS does (`worker/sms_worker.py`).
- `ProviderRejectedError` (or any other `IntegrationError`) fails the row at once;
  `ProviderUnavailableError` (connect error, 429, 502-504), `ProviderNoAnswerError` and a
  try longer than its budget are retried with backoff (WORKER_RETRY_BASE_SECONDS,
  WORKER_RETRY_MAX_SECONDS, at least Retry-After) up to WORKER_MAX_ATTEMPTS tries.
- Each try is counted and timed (`delivery_tries_total`, ...), and is a span of its own
  linked to the request that queued it.
"""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core import metrics
from backend.app.core.audit import sessions_acting_as
from backend.app.core.audit_context import WORKER
from backend.app.core.config import Settings
from backend.app.core.errors import (
    IntegrationError,
    ProviderNoAnswerError,
    ProviderRejectedError,
    ServiceUnavailableError,
)
from backend.app.core.tracing import linked_span
from backend.app.models.base import utcnow
from backend.app.models.outbox import OutboxMixin, OutboxStatus
from backend.app.worker.deliveries import backoff_seconds

logger = logging.getLogger("app.worker")

Row = TypeVar("Row", bound=OutboxMixin)


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed row: `sent`, `queued` again (at `retry_at`) or `failed`."""

    row_id: int
    status: OutboxStatus
    provider_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_at: datetime | None = None


class OutboxDelivery(Generic[Row]):
    """Drains one outbox table; subclasses name it and implement `send`."""

    name = "outbox"

    def __init__(
        self,
        *,
        model: type[Row],
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        send_budget_seconds: float,
    ) -> None:
        self._model = model
        self._settings = settings
        self._sessions = sessions_acting_as(session_factory, WORKER)  # the audit trail's actor
        self._budget = send_budget_seconds

    async def send(self, row: Row) -> str:
        """Perform one row through the provider; return the provider's id for it.

        Raises:
            ProviderRejectedError: refused for good (the row fails).
            ProviderUnavailableError: not done; try again later.
            ProviderNoAnswerError: maybe done; try again later with the same key.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release the provider client (subclasses that own one close it)."""

    async def run_once(self, *, limit: int | None = None) -> int:
        """Claim due rows, send them concurrently, record the outcomes; return how many.

        Args:
            limit: rows to claim at most (default WORKER_CONCURRENCY).
        """
        settings = self._settings
        token = uuid.uuid4().hex
        async with self._sessions.begin() as session:
            rows = await claim_due(
                session,
                self._model,
                now=utcnow(),
                limit=limit or settings.worker_concurrency,
                lease=timedelta(seconds=settings.worker_lease_seconds),
                token=token,
            )
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._try(row) for row in rows))
        async with self._sessions.begin() as session:
            for outcome in outcomes:
                await record_outcome(session, self._model, outcome, token=token, now=utcnow())
        return len(rows)

    async def publish_depth(self) -> None:
        """Publish how many rows are `queued` and `sending` (`delivery_outbox_rows`)."""
        async with self._sessions() as session:
            metrics.set_delivery_outbox_depth(self.name, await count_waiting(session, self._model))

    async def _try(self, row: Row) -> Outcome:
        """`_perform` one row in a span of its own, counted and timed by its outcome."""
        started = time.perf_counter()
        with linked_span(f"{self.name}.send", row.trace_context, {"outbox.id": row.id}):
            outcome = await self._perform(row)
        result = "retry" if outcome.status is OutboxStatus.QUEUED else outcome.status.value
        seconds = time.perf_counter() - started
        metrics.record_delivery(self.name, result, outcome.error_code, seconds)
        return outcome

    async def _perform(self, row: Row) -> Outcome:
        try:
            async with asyncio.timeout(self._budget):
                provider_id = await self.send(row)
        except (ProviderNoAnswerError, ServiceUnavailableError) as exc:
            return self._retry_or_fail(row, exc)
        except TimeoutError:
            return self._retry_or_fail(row, ProviderNoAnswerError("The send took too long."))
        except (ProviderRejectedError, IntegrationError) as exc:
            return _failed(row, exc)
        return Outcome(row_id=row.id, status=OutboxStatus.SENT, provider_id=provider_id)

    def _retry_or_fail(
        self, row: Row, error: IntegrationError | ServiceUnavailableError
    ) -> Outcome:
        """Queue a retry with backoff, or fail the row after WORKER_MAX_ATTEMPTS tries."""
        settings = self._settings
        if row.attempts >= settings.worker_max_attempts:
            logger.warning(
                "delivery failed after retries",
                extra={"delivery": self.name, "row_id": row.id, "code": error.code},
            )
            return _failed(row, error)
        delay = backoff_seconds(
            row.attempts,
            base=settings.worker_retry_base_seconds,
            ceiling=settings.worker_retry_max_seconds,
            retry_after=error.retry_after,
        )
        return Outcome(
            row_id=row.id,
            status=OutboxStatus.QUEUED,
            error_code=error.code,
            error_message=error.message[:500],
            retry_at=utcnow() + timedelta(seconds=delay),
        )


def _failed(row: OutboxMixin, error: IntegrationError | ServiceUnavailableError) -> Outcome:
    return Outcome(
        row_id=row.id,
        status=OutboxStatus.FAILED,
        error_code=error.code,
        error_message=error.message[:500],
    )


async def claim_due(
    session: AsyncSession,
    model: type[Row],
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    token: str,
) -> list[Row]:
    """Claim up to `limit` due rows of `model`: `sending`, leased to `token` until now + lease.

    Due: `queued` with `due_at <= now`, or `sending` with an expired lease.
    """
    due = or_(
        (model.status == OutboxStatus.QUEUED) & (model.due_at <= now),
        (model.status == OutboxStatus.SENDING) & (model.lease_expires_at <= now),
    )
    picked = (
        select(model.id)
        .where(due)
        .order_by(model.due_at, model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # Two statements: PostgreSQL may run `UPDATE ... WHERE id IN (SELECT ... LIMIT n)` more
    # than once and claim more than `limit` rows.
    ids = list(await session.scalars(picked))
    if not ids:
        return []
    claimed = await session.scalars(
        update(model)
        .where(model.id.in_(ids), due)
        .values(
            status=OutboxStatus.SENDING,
            attempts=model.attempts + 1,
            claim_token=token,
            lease_expires_at=now + lease,
        )
        .returning(model)
    )
    return sorted(claimed, key=lambda row: row.id)


async def record_outcome(
    session: AsyncSession, model: type[Row], outcome: Outcome, *, token: str, now: datetime
) -> bool:
    """Write `outcome` to its row if `token` still owns it; return whether it did.

    A row no longer owned was deleted meanwhile, or its lease ran out and another worker
    took it over (its try carries the same idempotency key).
    """
    values: dict[str, object] = {
        "status": outcome.status,
        "claim_token": None,
        "lease_expires_at": None,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
        "due_at": outcome.retry_at,
    }
    if outcome.status is OutboxStatus.SENT:
        values.update(provider_id=outcome.provider_id, sent_at=now)
    result = await session.execute(
        update(model)
        .where(
            model.id == outcome.row_id,
            model.claim_token == token,
            model.status == OutboxStatus.SENDING,
        )
        .values(values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar() is None:
        logger.warning(
            "claim lost before its outcome was recorded (row deleted or lease expired)",
            extra={"row_id": outcome.row_id, "status": outcome.status.value},
        )
        return False
    return True


async def count_waiting(session: AsyncSession, model: type[OutboxMixin]) -> dict[str, int]:
    """How many rows of `model` are `queued` and `sending` (the outbox depth)."""
    rows = await session.execute(
        select(model.status, func.count())
        .where(model.status.in_([OutboxStatus.QUEUED, OutboxStatus.SENDING]))
        .group_by(model.status)
    )
    return {str(status): count for status, count in rows}
