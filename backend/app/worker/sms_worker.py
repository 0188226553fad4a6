"""The SMS send loop: claim due messages, send them, record what happened.

Runs as its own process (`python -m backend.app.worker`, several at once on PostgreSQL) and,
on the embedded SQLite default, inside the API process too (`BackgroundWorker`).

Rules:
- Exactly one owner per message: a claim takes due rows with `FOR UPDATE SKIP LOCKED`, sets
  them `sending` with a lease (WORKER_LEASE_SECONDS) and a token, and every later write
  names that token (`crud/outbox.py`).
- Never two texts for one message. Twilio's Messages API has no idempotency key, so a try
  that may have reached Twilio (5xx, timeout, dropped connection, or a worker that died
  mid-send and left the row `sending` past its lease) is never repeated blindly: the row is
  marked `outcome_unknown_since`, and its next try first lists the recent messages to that
  number at Twilio; one with the same body, created since then and not owned by another
  row, is adopted (status `sent`, or the final status Twilio reports). Only when none is
  found is the text sent again. A status callback, which carries our id in its URL, settles
  such a row as well.
- Transient failures (429, connection refused, the unknown outcomes above) are retried with
  backoff, min(SMS_RETRY_MAX_SECONDS, SMS_RETRY_BASE_SECONDS * 2^(n-1)) with jitter and at
  least Retry-After, up to SMS_MAX_ATTEMPTS tries; then `failed` with the provider's code.
- Permanent refusals are `failed` at once; 21610 (recipient opted out) also records the
  number's opt-out. A text whose number opted out after queuing is `failed` with
  `recipient_opted_out`, unsent.
- A message deleted while in flight (the record it was about was deleted) is logged and
  forgotten. The worker knows nothing of leads or any other entity: a text goes to a number.

Observed (README "Operating"): each try is counted and timed by outcome and error code, the
outbox depth is published every OUTBOX_DEPTH_EVERY, each send is a span of its own linked to
the request that queued it, and an error nothing handles is reported before it ends the loop.
"""

import asyncio
import logging
import random
import signal
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core import idempotency, metrics
from backend.app.core.audit import sessions_acting_as
from backend.app.core.audit_context import WORKER
from backend.app.core.config import Settings
from backend.app.core.database import create_engine, create_session_factory
from backend.app.core.error_reporting import report_unhandled
from backend.app.core.errors import (
    SmsOutcomeUnknownError,
    SmsProviderError,
    SmsProviderUnavailableError,
    SmsRecipientOptedOutError,
)
from backend.app.core.observability import start_observability
from backend.app.core.tracing import linked_span
from backend.app.crud import audit as crud_audit
from backend.app.crud import outbox
from backend.app.crud import payments as crud_payments
from backend.app.crud.messages import TWILIO_STATUSES
from backend.app.crud.outbox import ClaimedMessage, SendOutcome
from backend.app.integrations.twilio import ProviderMessage, SmsSender, create_twilio_client
from backend.app.models.base import utcnow
from backend.app.models.message import MessageStatus

logger = logging.getLogger("app.worker")

STATUS_CALLBACK_PATH = "/api/v1/webhooks/twilio/status"
LOOKUP_CLOCK_SKEW = timedelta(minutes=5)
PRUNE_EVERY = timedelta(hours=1)
OUTBOX_DEPTH_EVERY = timedelta(seconds=15)
QUOTA_WINDOW = timedelta(hours=24)
STRIPE_EVENT_RETENTION = timedelta(days=30)


class SmsWorker:
    """Sends due messages in rounds of up to WORKER_CONCURRENCY at once."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        sender: SmsSender,
    ) -> None:
        self._settings = settings
        self._sessions = sessions_acting_as(session_factory, WORKER)  # the audit trail's actor
        self._sender = sender
        self._callback_base = settings.public_base_url.rstrip("/") + STATUS_CALLBACK_PATH
        self._pruned_at: datetime | None = None
        self._depth_at: datetime | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; a database outage pauses the loop, never ends it."""
        logger.info("sms worker started", extra={"provider": self._settings.sms_provider.value})
        while not stop.is_set():
            try:
                claimed = await self.run_once()
                await self.prune_if_due()
                await self.publish_outbox_depth_if_due()
            except (SQLAlchemyError, OSError) as exc:
                logger.error("sms worker round failed", extra={"error": type(exc).__name__})
                claimed = 0
            except Exception as exc:
                report_unhandled(exc, component="worker")
                raise
            if claimed < self._settings.worker_concurrency:
                await _wait_for(stop, self._settings.worker_poll_seconds)
        logger.info("sms worker stopped")

    async def run_once(self) -> int:
        """Claim due messages, send them concurrently, record the outcomes; return how many."""
        settings = self._settings
        async with self._sessions.begin() as session:
            claims = await outbox.claim_due(
                session,
                now=utcnow(),
                limit=settings.worker_concurrency,
                lease=timedelta(seconds=settings.worker_lease_seconds),
                token=uuid.uuid4().hex,
            )
        if not claims:
            return 0
        outcomes = await asyncio.gather(*(self._send(claim) for claim in claims))
        async with self._sessions.begin() as session:
            await outbox.record_outcomes(session, outcomes=list(outcomes), now=utcnow())
        return len(claims)

    async def _send(self, claim: ClaimedMessage) -> SendOutcome:
        """`_process` one claim in a span of its own, counted and timed by its outcome."""
        started = time.perf_counter()
        # A span of its own, linked to the request that queued the text.
        with linked_span("sms.send", claim.trace_context, {"message.id": claim.id}):
            outcome = await self._process(claim)
        result = "retry" if outcome.status is MessageStatus.QUEUED else outcome.status.value
        provider = self._settings.sms_provider.value
        metrics.record_send(provider, result, outcome.error_code, time.perf_counter() - started)
        return outcome

    async def _process(self, claim: ClaimedMessage) -> SendOutcome:
        """Send one claimed message (after a lookup if an earlier try may have gone out)."""
        if claim.recipient_opted_out:
            return _failed(
                claim, "recipient_opted_out", "The number opted out before the text was sent."
            )
        try:
            async with asyncio.timeout(2 * self._settings.sms_send_budget_seconds):
                if claim.outcome_unknown_since is not None:
                    found = await self._look_up(claim, claim.outcome_unknown_since)
                    if found is not None:
                        return _adopted(claim, found)
                sent = await self._sender.send(
                    to=claim.phone,
                    body=claim.body,
                    status_callback=f"{self._callback_base}?message_id={claim.id}",
                )
        except SmsRecipientOptedOutError as exc:
            return _failed(claim, str(exc.provider_code), exc.message, opt_out_recipient=True)
        except SmsProviderUnavailableError as exc:
            return self._retry_or_fail(claim, exc, unknown=False, retry_after=exc.retry_after)
        except SmsOutcomeUnknownError as exc:
            return self._retry_or_fail(claim, exc, unknown=True)
        except SmsProviderError as exc:
            code = str(exc.provider_code) if exc.provider_code else exc.code
            return _failed(claim, code, exc.message)
        except TimeoutError:
            return self._retry_or_fail(claim, SmsOutcomeUnknownError(), unknown=True)
        return SendOutcome(
            message_id=claim.id,
            phone=claim.phone,
            claim_token=claim.claim_token,
            status=MessageStatus.SENT,
            provider_message_id=sent.sid,
        )

    async def _look_up(self, claim: ClaimedMessage, since: datetime) -> ProviderMessage | None:
        """Find the text an earlier try may have sent: same number and body, not yet owned."""
        found = await self._sender.find_messages(
            to=claim.phone, created_after=since - LOOKUP_CLOCK_SKEW
        )
        candidates = [m for m in found if m.body == claim.body]
        for candidate in _oldest_first(candidates):
            async with self._sessions() as session:
                taken = await outbox.provider_id_taken(session, provider_message_id=candidate.sid)
            if not taken:
                logger.info(
                    "adopted a text found at the provider instead of sending again",
                    extra={"message_id": claim.id, "sid": candidate.sid},
                )
                return candidate
        return None

    def _retry_or_fail(
        self,
        claim: ClaimedMessage,
        error: SmsProviderError,
        *,
        unknown: bool,
        retry_after: float | None = None,
    ) -> SendOutcome:
        """Queue a retry with backoff, or fail the message after SMS_MAX_ATTEMPTS tries."""
        settings = self._settings
        code = str(error.provider_code) if error.provider_code else error.code
        now = utcnow()
        unknown_since = (claim.outcome_unknown_since or now) if unknown else None
        if claim.attempts >= settings.sms_max_attempts:
            logger.warning("sms failed after retries", extra={"message_id": claim.id, "code": code})
            return _failed(claim, code, error.message, unknown_since=unknown_since)
        ceiling = min(
            settings.sms_retry_max_seconds,
            settings.sms_retry_base_seconds * 2 ** (claim.attempts - 1),
        )
        delay = max(ceiling / 2 + random.uniform(0, ceiling / 2), retry_after or 0.0)  # noqa: S311
        return SendOutcome(
            message_id=claim.id,
            phone=claim.phone,
            claim_token=claim.claim_token,
            status=MessageStatus.QUEUED,
            error_code=code,
            error_message=error.message,
            retry_at=now + timedelta(seconds=delay),
            outcome_unknown_since=unknown_since,
        )

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
        """At most once per OUTBOX_DEPTH_EVERY, publish how many texts wait, by status."""
        now = utcnow()
        if self._depth_at is not None and now - self._depth_at < OUTBOX_DEPTH_EVERY:
            return
        async with self._sessions() as session:
            metrics.set_outbox_depth(await outbox.count_waiting(session))
        self._depth_at = now


def _failed(
    claim: ClaimedMessage,
    code: str,
    message: str,
    *,
    opt_out_recipient: bool = False,
    unknown_since: datetime | None = None,
) -> SendOutcome:
    return SendOutcome(
        message_id=claim.id,
        phone=claim.phone,
        claim_token=claim.claim_token,
        status=MessageStatus.FAILED,
        error_code=code,
        error_message=message[:500],
        outcome_unknown_since=unknown_since,
        opt_out_recipient=opt_out_recipient,
    )


def _adopted(claim: ClaimedMessage, found: ProviderMessage) -> SendOutcome:
    status = TWILIO_STATUSES.get(found.status.lower(), MessageStatus.SENT)
    failed = status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
    return SendOutcome(
        message_id=claim.id,
        phone=claim.phone,
        claim_token=claim.claim_token,
        status=status,
        provider_message_id=found.sid,
        error_code=str(found.error_code) if failed and found.error_code else None,
        error_message=found.error_message if failed else None,
    )


def _oldest_first(messages: Iterable[ProviderMessage]) -> list[ProviderMessage]:
    return sorted(messages, key=lambda m: (m.created_at is None, m.created_at or utcnow()))


async def _wait_for(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return


class BackgroundWorker:
    """The send loop as a task of the API process (SQLite default; WORKER_IN_APP)."""

    def __init__(self, worker: SmsWorker, *, grace_seconds: float) -> None:
        self._stop = asyncio.Event()
        self._grace = grace_seconds
        self._task = asyncio.create_task(worker.run(self._stop), name="sms-worker")

    async def stop(self) -> None:
        """Let the current round finish (bounded by the grace period), then end the task."""
        self._stop.set()
        try:
            async with asyncio.timeout(self._grace):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def run_worker(settings: Settings) -> None:
    """Run a worker process: engine and SMS client of its own, until SIGTERM or SIGINT."""
    engine = create_engine(settings)
    sender = create_twilio_client(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    observability = start_observability(settings, engine, component="worker")
    try:
        worker = SmsWorker(
            settings=settings, session_factory=create_session_factory(engine), sender=sender
        )
        await worker.run(stop)
    finally:
        await observability.stop()
        await sender.aclose()
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
