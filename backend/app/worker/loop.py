"""The worker loop: run every registered delivery in rounds, and the hourly housekeeping.

Runs as its own process (`python -m backend.app.worker`, several at once on PostgreSQL) and,
on the embedded SQLite default, inside the API process too (`BackgroundWorker`). The
deliveries it runs are listed in `worker/registry.py`; each owns its outbox, its provider
client and its rules (`worker/deliveries.py`).

A round runs every delivery at once; the loop waits WORKER_POLL_SECONDS only when no
delivery had a full round (so a backlog drains without pauses). A database outage pauses the
loop, never ends it; an error nothing handles is reported (Sentry) before it ends the loop.
"""

import asyncio
import logging
import signal
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core import idempotency
from backend.app.core.audit import sessions_acting_as
from backend.app.core.audit_context import WORKER
from backend.app.core.config import Settings
from backend.app.core.database import create_engine, create_session_factory
from backend.app.core.error_reporting import report_unhandled
from backend.app.core.observability import start_observability
from backend.app.crud import audit as crud_audit
from backend.app.crud import outbox
from backend.app.crud import payments as crud_payments
from backend.app.models.base import utcnow
from backend.app.worker.deliveries import Delivery
from backend.app.worker.registry import create_deliveries

logger = logging.getLogger("app.worker")

PRUNE_EVERY = timedelta(hours=1)
OUTBOX_DEPTH_EVERY = timedelta(seconds=15)
QUOTA_WINDOW = timedelta(hours=24)
STRIPE_EVENT_RETENTION = timedelta(days=30)
LANES = 2  # rounds in flight at once (see Worker.run)


class Worker:
    """Runs its deliveries round after round, prunes old rows, publishes outbox depths."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        deliveries: Sequence[Delivery],
    ) -> None:
        self._settings = settings
        self._sessions = sessions_acting_as(session_factory, WORKER)  # the audit trail's actor
        self.deliveries = list(deliveries)
        self._pruned_at: datetime | None = None
        self._depth_at: datetime | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; a database outage pauses the loop, never ends it.

        LANES loops run side by side, each claiming half of WORKER_CONCURRENCY per round, so
        one lane sends while the other records its outcomes and claims its next rows (one
        loop left the provider idle during those, and while its slowest send finished).
        """
        names = [delivery.name for delivery in self.deliveries]
        logger.info("worker started", extra={"deliveries": names})
        lanes = [asyncio.create_task(self._lane(stop, first=n == 0)) for n in range(LANES)]
        try:
            await asyncio.gather(*lanes)
        finally:
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
        logger.info("worker stopped")

    async def _lane(self, stop: asyncio.Event, *, first: bool) -> None:
        """Run rounds until `stop` is set; the first lane also does the housekeeping."""
        limit = max(1, self._settings.worker_concurrency // LANES)
        while not stop.is_set():
            try:
                busy = await self.run_once(limit=limit)
                if first:
                    await self.prune_if_due()
                    await self.publish_outbox_depth_if_due()
            except (SQLAlchemyError, OSError) as exc:
                logger.error("worker round failed", extra={"error": type(exc).__name__})
                busy = False
            except Exception as exc:
                report_unhandled(exc, component="worker")
                raise
            if not busy:
                await _wait_for(stop, self._settings.worker_poll_seconds)

    async def run_once(self, *, limit: int | None = None) -> bool:
        """Run one round of every delivery at once; return whether any had a full round.

        Args:
            limit: rows each delivery claims at most (default WORKER_CONCURRENCY).
        """
        limit = limit or self._settings.worker_concurrency
        claimed = await asyncio.gather(*(d.run_once(limit=limit) for d in self.deliveries))
        return any(count >= limit for count in claimed)

    async def prune_if_due(self) -> None:
        """At most once per PRUNE_EVERY, delete rows nothing needs any more.

        That is: quota entries outside the 24 h window, idempotency keys past their 24 h,
        Stripe event ids older than STRIPE_EVENT_RETENTION (Stripe redelivers for 3 days), and
        audit events older than AUDIT_RETENTION_DAYS.
        """
        now = utcnow()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        async with self._sessions.begin() as session:
            await outbox.prune_sms_usage(session, before=now - QUOTA_WINDOW)
            await idempotency.delete_expired_keys(session, now=now)
            await crud_payments.prune_stripe_events(session, before=now - STRIPE_EVENT_RETENTION)
            if self._settings.audit_retention_days:
                retention = timedelta(days=self._settings.audit_retention_days)
                await crud_audit.prune_audit_events(session, before=now - retention)
        self._pruned_at = now

    async def publish_outbox_depth_if_due(self) -> None:
        """At most once per OUTBOX_DEPTH_EVERY, publish how many rows each outbox holds."""
        now = utcnow()
        if self._depth_at is not None and now - self._depth_at < OUTBOX_DEPTH_EVERY:
            return
        for delivery in self.deliveries:
            await delivery.publish_depth()
        self._depth_at = now

    async def aclose(self) -> None:
        """Release every delivery's provider client."""
        for delivery in self.deliveries:
            await delivery.aclose()


async def _wait_for(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return


def create_worker(settings: Settings, session_factory: async_sessionmaker[AsyncSession]) -> Worker:
    """A worker running every registered delivery (`worker/registry.py`)."""
    return Worker(
        settings=settings,
        session_factory=session_factory,
        deliveries=create_deliveries(settings, session_factory),
    )


class BackgroundWorker:
    """The worker loop as a task of the API process (SQLite default; WORKER_IN_APP)."""

    def __init__(self, worker: Worker, *, grace_seconds: float) -> None:
        self._worker = worker
        self._stop = asyncio.Event()
        self._grace = grace_seconds
        self._task = asyncio.create_task(worker.run(self._stop), name="worker")

    async def stop(self) -> None:
        """Let the current round finish (bounded by the grace period), then end the task."""
        self._stop.set()
        try:
            async with asyncio.timeout(self._grace):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._worker.aclose()


async def run_worker(settings: Settings) -> None:
    """Run a worker process: an engine and provider clients of its own, until SIGTERM/SIGINT."""
    engine = create_engine(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    observability = start_observability(settings, engine, component="worker")
    worker = create_worker(settings, create_session_factory(engine))
    try:
        await worker.run(stop)
    finally:
        await observability.stop()
        await worker.aclose()
        await engine.dispose()


def run_worker_process(settings: Settings) -> None:
    """Run `run_worker` to the end on uvloop, the loop uvicorn gives the API.

    Falls back to asyncio's own loop where uvloop is not installed (`uvicorn[standard]`
    leaves it out on Windows). uvloop sends about 12% more texts per second
    (`make bench`, one worker).
    """
    try:
        import uvloop  # optional: absent on Windows
    except ImportError:
        asyncio.run(run_worker(settings))
        return
    uvloop.run(run_worker(settings))
