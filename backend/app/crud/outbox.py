"""Data logic of the SMS worker: claim due messages with a lease, record what happened.

A claim picks due rows with `FOR UPDATE SKIP LOCKED` (PostgreSQL) and moves them to
`sending` with an UPDATE that checks again that each is still due (SQLite has no row locks,
but runs one writer at a time, so that UPDATE alone keeps two claims apart there). Every
later write names the claim's token, so a worker whose lease was taken over cannot
overwrite the new owner's work, and a row deleted meanwhile (with its record) is simply
not found.

The worker knows nothing of the records texts are about: a text goes to its number, and a
number that opted out (`sms_opt_outs`) is not texted, whatever record it is about.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, case, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.crud.messages import opt_out
from backend.app.models.message import PENDING_STATUSES, Message, MessageStatus
from backend.app.models.sms_opt_out import SmsOptOut
from backend.app.models.sms_usage import SmsUsage

logger = logging.getLogger("app.worker")


@dataclass(frozen=True)
class ClaimedMessage:
    """A message a worker now owns until `lease_expires_at`."""

    id: int
    phone: str
    body: str
    attempts: int
    claim_token: str
    # Set when an earlier try may have reached the provider: look it up before sending.
    outcome_unknown_since: datetime | None
    recipient_opted_out: bool
    trace_context: str | None


@dataclass(frozen=True)
class SendOutcome:
    """What became of one claimed message; `record_outcomes` writes it.

    `status`: `sent` (or a final status learned by a lookup), `queued` (retry at
    `retry_at`) or `failed`.
    """

    message_id: int
    phone: str
    claim_token: str
    status: MessageStatus
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_at: datetime | None = None
    outcome_unknown_since: datetime | None = None
    opt_out_recipient: bool = False  # the provider says the number opted out (21610)


async def claim_due(
    session: AsyncSession, *, now: datetime, limit: int, lease: timedelta, token: str
) -> list[ClaimedMessage]:
    """Claim up to `limit` due messages: `sending`, leased to `token` until `now + lease`.

    Due: `queued`/`scheduled` with `due_at <= now`, or `sending` with an expired lease (its
    worker died or hung). The latter may have reached the provider, so it is marked
    `outcome_unknown_since` (the time of that try) and will be looked up, not re-sent blindly.
    """
    due = or_(
        Message.status.in_(PENDING_STATUSES) & (Message.due_at <= now),
        (Message.status == MessageStatus.SENDING) & (Message.lease_expires_at <= now),
    )
    picked = (
        select(Message.id)
        .where(due)
        .order_by(Message.due_at, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # Two statements, not `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`:
    # PostgreSQL may run such a subquery more than once and claim far more than `limit` rows.
    picked_ids = list(await session.scalars(picked))
    if not picked_ids:
        return []
    claimed_ids = list(
        await session.scalars(
            update(Message)
            .where(Message.id.in_(picked_ids), due)
            .values(
                status=MessageStatus.SENDING,
                attempts=Message.attempts + 1,
                claim_token=token,
                lease_expires_at=now + lease,
                outcome_unknown_since=case(
                    (
                        Message.status == MessageStatus.SENDING,
                        func.coalesce(Message.outcome_unknown_since, Message.updated_at),
                    ),
                    else_=Message.outcome_unknown_since,
                ),
                updated_at=now,
            )
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed_ids:
        return []
    opted_out = exists().where(SmsOptOut.phone == Message.phone).label("opted_out")
    rows = await session.execute(
        select(
            Message.id,
            Message.phone,
            Message.body,
            Message.attempts,
            Message.outcome_unknown_since,
            Message.trace_context,
            opted_out,
        )
        .where(Message.id.in_(claimed_ids))
        .order_by(Message.id)
    )
    return [
        ClaimedMessage(
            id=row.id,
            phone=row.phone,
            body=row.body,
            attempts=row.attempts,
            claim_token=token,
            outcome_unknown_since=row.outcome_unknown_since,
            recipient_opted_out=row.opted_out,
            trace_context=row.trace_context,
        )
        for row in rows
    ]


async def provider_id_taken(session: AsyncSession, *, provider_message_id: str) -> bool:
    """Whether a stored message already carries this provider id (so a lookup cannot adopt it)."""
    found = await session.scalar(
        select(Message.id).where(Message.provider_message_id == provider_message_id).limit(1)
    )
    return found is not None


async def record_outcomes(
    session: AsyncSession, *, outcomes: list[SendOutcome], now: datetime
) -> int:
    """Write each outcome to its message if the claim still holds; return how many did.

    Plain successes (the bulk) go in one batched UPDATE; the rest row by row. A message
    whose claim no longer holds was deleted with its record, or its lease expired and another
    worker took it over (that worker looks the text up before sending again).
    """
    plain = [o for o in outcomes if _is_plain_success(o)]
    written = await _record_plain_successes(session, outcomes=plain, now=now)
    for outcome in outcomes:
        if outcome.opt_out_recipient:
            await opt_out(session, phone=outcome.phone)
        if _is_plain_success(outcome) and outcome.message_id in written:
            continue
        if await _record_one(session, outcome=outcome, now=now):
            written.add(outcome.message_id)
        else:
            logger.warning(
                "claim lost before its outcome was recorded (message deleted or lease expired)",
                extra={"message_id": outcome.message_id, "status": outcome.status.value},
            )
    return len(written)


def _is_plain_success(outcome: SendOutcome) -> bool:
    return outcome.status is MessageStatus.SENT and outcome.provider_message_id is not None


async def _record_plain_successes(
    session: AsyncSession, *, outcomes: list[SendOutcome], now: datetime
) -> set[int]:
    """Mark `sent` in one executemany UPDATE; return the ids it wrote.

    Rows it did not write (a callback got there first, or the claim is gone) are left to
    `_record_one`.
    """
    if not outcomes:
        return set()
    table = Message.__table__
    assert isinstance(table, Table)  # narrows the type for Core's executemany UPDATE
    await session.execute(
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.claim_token == bindparam("b_token"),
            table.c.status == MessageStatus.SENDING,
        )
        .values(
            status=MessageStatus.SENT,
            provider_message_id=bindparam("b_sid"),
            sent_at=now,
            due_at=None,
            outcome_unknown_since=None,
            error_code=None,
            error_message=None,
            claim_token=None,
            lease_expires_at=None,
            updated_at=now,
        ),
        [
            {"b_id": o.message_id, "b_token": o.claim_token, "b_sid": o.provider_message_id}
            for o in outcomes
        ],
    )
    rows = await session.execute(
        select(Message.id, Message.provider_message_id, Message.claim_token).where(
            Message.id.in_([o.message_id for o in outcomes])
        )
    )
    sids = {o.message_id: o.provider_message_id for o in outcomes}
    return {
        row.id
        for row in rows
        if row.claim_token is None and row.provider_message_id == sids[row.id]
    }


async def _record_one(session: AsyncSession, *, outcome: SendOutcome, now: datetime) -> bool:
    owned = (Message.id == outcome.message_id) & (Message.claim_token == outcome.claim_token)
    released = {"claim_token": None, "lease_expires_at": None, "updated_at": now}
    if outcome.status is MessageStatus.QUEUED:
        values = {
            **released,
            "status": MessageStatus.QUEUED,
            "due_at": outcome.retry_at,
            "error_code": outcome.error_code,
            "error_message": outcome.error_message,
            "outcome_unknown_since": func.coalesce(
                Message.outcome_unknown_since, outcome.outcome_unknown_since
            ),
        }
    elif outcome.provider_message_id is None:  # failed before reaching the provider
        values = {
            **released,
            "status": outcome.status,
            "due_at": None,
            "error_code": outcome.error_code,
            "error_message": outcome.error_message,
            "outcome_unknown_since": func.coalesce(
                Message.outcome_unknown_since, outcome.outcome_unknown_since
            ),
        }
    else:
        values = {
            **released,
            "status": outcome.status,
            "provider_message_id": outcome.provider_message_id,
            "sent_at": now,
            "due_at": None,
            "outcome_unknown_since": None,
            "error_code": outcome.error_code,
            "error_message": outcome.error_message,
        }
    result = await session.execute(
        update(Message)
        .where(owned, Message.status == MessageStatus.SENDING)
        .values(values)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar() is not None:
        return True
    if outcome.provider_message_id is None:
        return False
    # A status callback got there first (it found the row by our id): keep its status.
    result = await session.execute(
        update(Message)
        .where(owned)
        .values(
            **released,
            provider_message_id=func.coalesce(
                Message.provider_message_id, outcome.provider_message_id
            ),
            sent_at=func.coalesce(Message.sent_at, now),
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar() is not None


async def count_waiting(session: AsyncSession) -> dict[str, int]:
    """How many outbound messages are `scheduled`, `queued` and `sending` (the outbox depth)."""
    rows = await session.execute(
        select(Message.status, func.count())
        .where(Message.status.in_([*PENDING_STATUSES, MessageStatus.SENDING]))
        .group_by(Message.status)
    )
    return {str(status): count for status, count in rows}


async def prune_sms_usage(session: AsyncSession, *, before: datetime) -> None:
    """Delete quota entries older than `before` (they no longer count)."""
    await session.execute(delete(SmsUsage).where(SmsUsage.created_at < before))
