"""Data logic for messages: queue, list and cancel texts; apply Twilio's webhooks.

Functions never commit: the request's unit of work does. Queuing a text only writes rows
(the message is the outbox entry); the worker sends it (`crud/outbox.py`).
"""

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core.errors import (
    LeadHasNoPhoneError,
    LeadOptedOutError,
    MessageNotCancelableError,
    NotFoundError,
    SmsQuotaExceededError,
)
from backend.app.core.pagination import paginate
from backend.app.models.base import utcnow
from backend.app.models.lead import Lead
from backend.app.models.message import (
    FINAL_STATUSES,
    Message,
    MessageDirection,
    MessageStatus,
)
from backend.app.models.sms_usage import SmsUsage
from backend.app.models.user import User
from backend.app.schemas.common import PageParams
from backend.app.schemas.message import MessageCreate, MessagePage

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


async def create_message(
    session: AsyncSession, *, lead: Lead, data: MessageCreate, user: User, daily_limit: int
) -> Message:
    """Queue a text to `lead`: `scheduled` if `data.send_at` is set, else `queued`.

    Raises:
        LeadHasNoPhoneError: the lead has no phone number.
        LeadOptedOutError: the lead replied STOP.
        SmsQuotaExceededError: `user` queued `daily_limit` texts in the last 24 hours.
    """
    if not lead.phone:
        raise LeadHasNoPhoneError(f"Lead {lead.id} has no phone number to text.")
    if lead.sms_opted_out:
        raise LeadOptedOutError(f"Lead {lead.id} opted out of text messages.")
    await _take_quota(session, user=user, daily_limit=daily_limit)
    now = utcnow()
    message = Message(
        lead_id=lead.id,
        created_by_id=user.id,
        direction=MessageDirection.OUTBOUND,
        status=MessageStatus.SCHEDULED if data.send_at else MessageStatus.QUEUED,
        body=data.body,
        phone=lead.phone,
        send_at=data.send_at,
        due_at=data.send_at or now,
        attempts=0,
    )
    session.add(message)
    await session.flush()
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


async def list_messages(session: AsyncSession, *, lead: Lead, page: PageParams) -> MessagePage:
    """Return one page of `lead`'s messages, newest first, and how many there are."""
    query = select(Message).where(Message.lead_id == lead.id)
    order: list[ColumnElement[Any]] = [Message.created_at.desc(), Message.id.desc()]
    return await paginate(session, query, page=page, order_by=order, schema=MessagePage)


async def get_message_for_update(session: AsyncSession, *, lead: Lead, message_id: int) -> Message:
    """Return message `message_id` of `lead`, locked (PostgreSQL) until the request ends.

    Raises:
        NotFoundError: no such message on this lead.
    """
    message = await session.scalar(
        select(Message)
        .where(Message.id == message_id, Message.lead_id == lead.id)
        .with_for_update()
    )
    if message is None:
        raise NotFoundError(f"Message {message_id} was not found.")
    return message


async def cancel_message(session: AsyncSession, *, message: Message) -> Message:
    """Cancel a `scheduled` message; it stays, as `canceled`.

    The row is locked by `get_message_for_update`, so a worker cannot claim it meanwhile.

    Raises:
        MessageNotCancelableError: the message is not `scheduled`.
    """
    if message.status is not MessageStatus.SCHEDULED:
        raise MessageNotCancelableError(
            f"Message {message.id} is {message.status.value}; only a scheduled one can be canceled."
        )
    message.status = MessageStatus.CANCELED
    message.due_at = None
    await session.flush()
    return message


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
) -> list[Message]:
    """Store an inbound text on every lead with the sender's phone; apply STOP/START.

    A redelivered webhook (same MessageSid) changes nothing. STOP sets `sms_opted_out` on
    those leads, START clears it; the opt-out concerns the number, so it applies to each.
    """
    leads = list(
        await session.scalars(select(Lead).where(Lead.phone == from_phone).with_for_update())
    )
    stored: list[Message] = []
    for lead in leads:
        seen = await session.scalar(
            select(Message.id).where(
                Message.provider_message_id == provider_message_id, Message.lead_id == lead.id
            )
        )
        if seen is not None:
            continue
        message = Message(
            lead_id=lead.id,
            direction=MessageDirection.INBOUND,
            status=MessageStatus.RECEIVED,
            body=body,
            phone=from_phone,
            provider_message_id=provider_message_id,
            attempts=0,
        )
        session.add(message)
        stored.append(message)
        if opt_keyword in {"STOP", "START"}:
            lead.sms_opted_out = opt_keyword == "STOP"
    await session.flush()
    return stored
