"""The SMS delivery: claim due messages, send them, record what happened.

The first delivery of the worker (`worker/deliveries.py`), run by its loop (`worker/loop.py`)
in its own process (`python -m backend.app.worker`, several at once on PostgreSQL) and, on
the embedded SQLite default, inside the API process too (`BackgroundWorker`).

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
outbox depth is published by `publish_depth` (the loop calls it every OUTBOX_DEPTH_EVERY), and
each send is a span of its own linked to the request that queued it.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core import metrics
from backend.app.core.audit import sessions_acting_as
from backend.app.core.audit_context import WORKER
from backend.app.core.config import Settings
from backend.app.core.errors import (
    SmsOutcomeUnknownError,
    SmsProviderError,
    SmsProviderUnavailableError,
    SmsRecipientOptedOutError,
)
from backend.app.core.tracing import linked_span
from backend.app.crud import outbox
from backend.app.crud.messages import TWILIO_STATUSES
from backend.app.crud.outbox import ClaimedMessage, SendOutcome
from backend.app.integrations.twilio import ProviderMessage, SmsSender, create_twilio_client
from backend.app.models.base import utcnow
from backend.app.models.message import MessageStatus
from backend.app.worker.deliveries import backoff_seconds

logger = logging.getLogger("app.worker")

STATUS_CALLBACK_PATH = "/api/v1/webhooks/twilio/status"
LOOKUP_CLOCK_SKEW = timedelta(minutes=5)


class SmsWorker:
    """The SMS delivery: sends due messages in rounds of up to WORKER_CONCURRENCY at once."""

    name = "sms"

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

    async def run_once(self, *, limit: int | None = None) -> int:
        """Claim due messages, send them concurrently, record the outcomes; return how many.

        Args:
            limit: messages to claim at most (default WORKER_CONCURRENCY).
        """
        settings = self._settings
        async with self._sessions.begin() as session:
            claims = await outbox.claim_due(
                session,
                now=utcnow(),
                limit=limit or settings.worker_concurrency,
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
        delay = backoff_seconds(
            claim.attempts,
            base=settings.sms_retry_base_seconds,
            ceiling=settings.sms_retry_max_seconds,
            retry_after=retry_after,
        )
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

    async def publish_depth(self) -> None:
        """Publish how many texts wait, by status (`sms_outbox_messages`)."""
        async with self._sessions() as session:
            metrics.set_outbox_depth(await outbox.count_waiting(session))

    async def aclose(self) -> None:
        """Close the SMS client."""
        await self._sender.aclose()


def sms_delivery(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> SmsWorker:
    """The SMS delivery of a worker, with an SMS client of its own (SMS_PROVIDER)."""
    return SmsWorker(
        settings=settings, session_factory=session_factory, sender=create_twilio_client(settings)
    )


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
