"""Data logic of texts: queue, list and cancel them, about any record; apply Twilio's webhooks.

Functions never commit: the request's unit of work does. Queuing a text only writes rows
(the message is the outbox entry); the worker sends it (`crud/outbox.py`). A text is about a
record of any entity, or none (`core/subjects.py`); an entity wraps these functions with its
own rules (see `crud/lead_actions.py::text_lead`).

Opt-outs are kept per phone number (`sms_opt_outs`), as the provider keeps them: a STOP from
a number stops every text to it, whatever record it is about.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, func, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from backend.app.core.errors import (
    MessageNotCancelableError,
    NotFoundError,
    RecipientOptedOutError,
    SmsQuotaExceededError,
)
from backend.app.core.pagination import paginate
from backend.app.core.subjects import SubjectType, lock_subject, subject_of
from backend.app.core.tracing import current_trace_context
from backend.app.models.base import Base, utcnow
from backend.app.models.message import (
    FINAL_STATUSES,
    Message,
    MessageDirection,
    MessageStatus,
)
from backend.app.models.sms_opt_out import SmsOptOut
from backend.app.models.sms_usage import SmsUsage
from backend.app.models.user import User
from backend.app.schemas.common import Page, PageParams

PageT = TypeVar("PageT", bound=Page[Any])

QUOTA_WINDOW = timedelta(hours=24)

# Order of outbound statuses: a webhook may only move a message to a higher rank.
STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.SENT: 3,
    **dict.fromkeys(FINAL_STATUSES, 4),
}

# Twilio's status words -> ours. Anything else (e.g. `canceled`) is acknowledged and ignored.
TWILIO_STATUSES: dict[str, MessageStatus] = {
    "accepted": MessageStatus.SENT,
    "scheduled": MessageStatus.SENT,
    "queued": MessageStatus.SENT,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
}

DELIVERY_ERRORS = {
    "30003": "Unreachable destination handset.",
    "30005": "Unknown destination handset.",
    "30006": "Landline or unreachable carrier.",
    "30007": "Message filtered by the carrier.",
    "30008": "Unknown delivery error.",
}


async def queue_text(
    session: AsyncSession,
    *,
    to: str,
    body: str,
    send_at: datetime | None,
    about: Base | None,
    sender: User,
    daily_limit: int,
) -> Message:
    """Queue a text to `to` (E.164): `scheduled` for `send_at`, else `queued` now.

    Args:
        session: the request's unit of work; the worker sends after it commits.
        to: the number to text.
        body: the text.
        send_at: when to send it (UTC, in the future), or None for now.
        about: the record it is about, if any (it must still exist; see `lock_subject`).
        sender: the user queuing it; it counts against their daily limit.
        daily_limit: texts a user may queue in any 24 hours.

    Raises:
        RecipientOptedOutError: the number replied STOP.
        SmsQuotaExceededError: `sender` queued `daily_limit` texts in the last 24 hours.
        NotFoundError: `about` was deleted by a concurrent request.
    """
    if await is_opted_out(session, phone=to):
        raise RecipientOptedOutError
    await _take_quota(session, user=sender, daily_limit=daily_limit)
    subject = subject_of(about) if about is not None else None
    message = Message(
        subject_type=subject.type if subject else None,
        subject_id=subject.id if subject else None,
        created_by_id=sender.id,
        direction=MessageDirection.OUTBOUND,
        status=MessageStatus.SCHEDULED if send_at else MessageStatus.QUEUED,
        body=body,
        phone=to,
        send_at=send_at,
        due_at=send_at or utcnow(),
        attempts=0,
        trace_context=current_trace_context(),  # the worker's send joins this request's trace
    )
    session.add(message)
    await session.flush()
    if subject is not None:
        await lock_subject(session, subject)
    return message


async def _take_quota(session: AsyncSession, *, user: User, daily_limit: int) -> None:
    """Count one text against `user`'s rolling 24-hour limit.

    The user's row is locked first (PostgreSQL), so two concurrent requests cannot both take
    the last slot.

    Raises:
        SmsQuotaExceededError: the limit is reached; `retry_after` says when a slot frees.
    """
    await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    now = utcnow()
    used, oldest = (
        await session.execute(
            select(func.count(SmsUsage.id), func.min(SmsUsage.created_at)).where(
                SmsUsage.user_id == user.id, SmsUsage.created_at > now - QUOTA_WINDOW
            )
        )
    ).one()
    if used >= daily_limit:
        frees_at = (oldest or now) + QUOTA_WINDOW
        raise SmsQuotaExceededError(
            f"You may queue {daily_limit} text messages in any 24 hours.",
            retry_after=int((frees_at - now).total_seconds()) + 1,
        )
    session.add(SmsUsage(user_id=user.id, created_at=now))


def _about(record: Base) -> list[ColumnElement[bool]]:
    subject = subject_of(record)
    return [Message.subject_type == subject.type, Message.subject_id == subject.id]


async def list_texts(
    session: AsyncSession, *, about: Base, page: PageParams, schema: type[PageT]
) -> PageT:
    """Return one page of the texts about a record, both directions, newest first."""
    query = select(Message).where(*_about(about))
    order: list[ColumnElement[Any]] = [Message.created_at.desc(), Message.id.desc()]
    return await paginate(session, query, page=page, order_by=order, schema=schema)


async def get_text_for_update(session: AsyncSession, *, about: Base, message_id: int) -> Message:
    """Return text `message_id` about a record, locked (PostgreSQL) until the request ends.

    Raises:
        NotFoundError: no such text about this record.
    """
    message = await session.scalar(
        select(Message).where(Message.id == message_id, *_about(about)).with_for_update()
    )
    if message is None:
        raise NotFoundError(f"Message {message_id} was not found.")
    return message


async def cancel_text(session: AsyncSession, *, message: Message) -> Message:
    """Cancel a `scheduled` text; it stays, as `canceled`.

    The row is locked by `get_text_for_update`, so a worker cannot claim it meanwhile.

    Raises:
        MessageNotCancelableError: the text is not `scheduled`.
    """
    if message.status is not MessageStatus.SCHEDULED:
        raise MessageNotCancelableError(
            f"Message {message.id} is {message.status.value}; only a scheduled one can be canceled."
        )
    message.status = MessageStatus.CANCELED
    message.due_at = None
    await session.flush()
    return message


async def delete_texts_about(session: AsyncSession, *, about: Base) -> None:
    """Delete every text about a record (its entity's delete calls it); pending ones never go.

    A worker holding one of them in flight finds its claim gone and forgets it.
    """
    await session.execute(delete(Message).where(*_about(about)))


async def apply_status_callback(
    session: AsyncSession,
    *,
    provider_message_id: str,
    provider_status: str,
    error_code: str | None,
    message_id: int | None,
) -> Message | None:
    """Apply a status callback; return the message it concerns, if we know it.

    The message is found by the provider's id, or by our id (`message_id`, carried in the
    StatusCallback URL) while the provider's id is not stored yet: the send's answer was lost
    (timeout, crash) and this callback is how we learn the text went out. Otherwise the
    status only moves forward (`STATUS_RANK`), so duplicated, late or reordered callbacks
    change nothing.
    """
    message = await session.scalar(
        select(Message)
        .where(
            Message.provider_message_id == provider_message_id,
            Message.direction == MessageDirection.OUTBOUND,
        )
        .with_for_update()
    )
    if message is None and message_id is not None:
        message = await session.scalar(
            select(Message)
            .where(
                Message.id == message_id,
                Message.direction == MessageDirection.OUTBOUND,
                Message.provider_message_id.is_(None),
                Message.attempts > 0,
                Message.status != MessageStatus.CANCELED,
            )
            .with_for_update()
        )
    new_status = TWILIO_STATUSES.get(provider_status.lower())
    if message is None or new_status is None:
        return message
    now = utcnow()
    adopting = message.provider_message_id is None
    if adopting:
        message.provider_message_id = provider_message_id
        message.sent_at = message.sent_at or now
        message.outcome_unknown_since = None
        message.due_at = None
    if adopting or STATUS_RANK[new_status] > STATUS_RANK[message.status]:
        message.status = new_status
        if new_status in (MessageStatus.UNDELIVERED, MessageStatus.FAILED):
            message.error_code = error_code
            message.error_message = DELIVERY_ERRORS.get(error_code or "", "Delivery failed.")
        elif adopting:
            message.error_code = message.error_message = None
    await session.flush()
    return message


async def record_inbound(
    session: AsyncSession,
    *,
    provider_message_id: str,
    from_phone: str,
    body: str,
    opt_keyword: str | None,
    subject_types: Iterable[SubjectType],
) -> list[Message]:
    """Apply STOP/START to the sender's number; store the text on every record with it.

    The text is stored once for each record of each entity in `subject_types` whose phone is
    `from_phone` (none if no record has it). A redelivered webhook (same MessageSid) stores
    nothing twice.
    """
    if opt_keyword == "STOP":
        await opt_out(session, phone=from_phone)
    elif opt_keyword == "START":
        await session.execute(delete(SmsOptOut).where(SmsOptOut.phone == from_phone))
    stored: list[Message] = []
    for subject_type in subject_types:
        if subject_type.phone is None:
            continue
        key = inspect(subject_type.model).primary_key[0]
        ids = await session.scalars(select(key).where(subject_type.phone == from_phone))
        for record_id in ids:
            seen = await session.scalar(
                select(Message.id).where(
                    Message.provider_message_id == provider_message_id,
                    Message.subject_type == subject_type.name,
                    Message.subject_id == record_id,
                )
            )
            if seen is None:
                stored.append(
                    Message(
                        subject_type=subject_type.name,
                        subject_id=record_id,
                        direction=MessageDirection.INBOUND,
                        status=MessageStatus.RECEIVED,
                        body=body,
                        phone=from_phone,
                        provider_message_id=provider_message_id,
                        attempts=0,
                    )
                )
    session.add_all(stored)
    await session.flush()
    return stored


async def refresh_opt_out(
    session: AsyncSession, record: Base, *, flag: str, phone: str | None
) -> None:
    """Read a record's opt-out flag (a column_property) after its phone number was set.

    A STOP is kept per number, so a new or re-numbered record may be opted out already.
    """
    if phone is None:
        set_committed_value(record, flag, False)
    else:
        await session.refresh(record, [flag])


async def is_opted_out(session: AsyncSession, *, phone: str) -> bool:
    """Whether `phone` replied STOP (and not START since)."""
    found = await session.scalar(select(SmsOptOut.phone).where(SmsOptOut.phone == phone))
    return found is not None


async def opt_out(session: AsyncSession, *, phone: str) -> None:
    """Record that `phone` opted out (a STOP, or the provider's 21610); a repeat is a no-op."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    await session.execute(
        dialect.insert(SmsOptOut)
        .values(phone=phone, opted_out_at=utcnow())
        .on_conflict_do_nothing()
    )
