"""The `messages` table: texts we send (outbound) and receive (inbound), about any record.

A text goes to a phone number; `subject_type` (the table name, e.g. `leads`) and
`subject_id` say which record it is about, if any, so any entity can be texted without a
column of its own here (see `crud/messages.py`). An outbound row is also the outbox entry
the worker sends from: `due_at`, `attempts`, `lease_expires_at`, `claim_token`,
`outcome_unknown_since` and `trace_context` are its bookkeeping and never leave the server.
See `backend/app/worker/sms_worker.py` for the rules.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.models.base import Base, BigIntId, TimestampMixin, enum_column


class MessageDirection(StrEnum):
    """Whether we sent the text or the lead did."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


class MessageStatus(StrEnum):
    """Where a message stands.

    Outbound: `scheduled` -> `queued` -> `sending` -> `sent` -> `delivered` | `undelivered`,
    or `failed`; `canceled` from `scheduled`. Inbound messages are `received`.
    """

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    RECEIVED = "received"


PENDING_STATUSES = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)
FINAL_STATUSES = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.CANCELED,
        MessageStatus.RECEIVED,
    }
)


class Message(TimestampMixin, Base):
    """One SMS to or from a phone number, about a record (`subject_*`) or none.

    Deleted with its record (`crud.messages.delete_texts_about`, called by the entity's
    delete); an inbound text is stored once for each record with the sender's number.
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index(
            "ix_messages_subject_type_subject_id_created_at_id",
            "subject_type",
            "subject_id",
            "created_at",
            "id",
        ),
        Index("ix_messages_status_due_at", "status", "due_at"),
        UniqueConstraint(
            "provider_message_id",
            "subject_type",
            "subject_id",
            name="uq_messages_provider_message_id_subject",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    direction: Mapped[MessageDirection] = mapped_column(enum_column(MessageDirection))
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus))
    body: Mapped[str] = mapped_column(Text)
    # The number the text goes to (outbound) or came from (inbound), in E.164.
    phone: Mapped[str] = mapped_column(String(20))
    send_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(500))
    # Outbox bookkeeping (worker only), left out of the audit trail's changes.
    due_at: Mapped[datetime | None] = mapped_column(info={"audit": False})
    attempts: Mapped[int] = mapped_column(default=0, info={"audit": False})
    lease_expires_at: Mapped[datetime | None] = mapped_column(info={"audit": False})
    claim_token: Mapped[str | None] = mapped_column(String(32), info={"audit": False})
    outcome_unknown_since: Mapped[datetime | None] = mapped_column(info={"audit": False})
    # W3C traceparent of the request that queued it, so the worker's send joins its trace.
    trace_context: Mapped[str | None] = mapped_column(String(64), info={"audit": False})
