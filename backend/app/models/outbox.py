"""The columns every outbox table shares, for the worker's generic delivery.

An integration's side effect (an email, a webhook call, a sync) is a row first, added in the
request's unit of work, and performed later by the worker (`worker/outbox_delivery.py`). Its
table is a model of its own with the payload columns it needs, plus this mixin:

    class EmailOutbox(OutboxMixin, TimestampMixin, Base):
        __tablename__ = "email_outbox"
        __table_args__ = (Index("ix_email_outbox_status_due_at", "status", "due_at"),)

Bookkeeping (`due_at`, `attempts`, the lease, `trace_context`) is left out of the audit
trail; the status, the provider's id and the error are business changes and are recorded.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.models.base import BigIntId, enum_column


class OutboxStatus(StrEnum):
    """Where an outbox row stands: `queued` -> `sending` -> `sent`, or `failed`."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMixin:
    """Status, lease and outcome of one side effect waiting for the worker.

    - `due_at`: when it may be tried (now when queued, later for a retry); None once final.
    - `attempts`: tries so far; after WORKER_MAX_ATTEMPTS the row is `failed`.
    - `claim_token`, `lease_expires_at`: the worker that owns it while `sending`; a lease
      that runs out (the worker died) makes the row due again, with the same
      `idempotency_key`, so the provider can tell a repeat.
    - `provider_id`, `sent_at`: the provider's id for it, once sent.
    - `error_code`, `error_message`: why the last try failed.
    - `trace_context`: the `traceparent` of the request that queued it.
    """

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, sort_order=-100)
    status: Mapped[OutboxStatus] = mapped_column(
        enum_column(OutboxStatus), default=OutboxStatus.QUEUED, sort_order=90
    )
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True, sort_order=91)
    due_at: Mapped[datetime | None] = mapped_column(info={"audit": False}, sort_order=92)
    attempts: Mapped[int] = mapped_column(default=0, info={"audit": False}, sort_order=93)
    lease_expires_at: Mapped[datetime | None] = mapped_column(info={"audit": False}, sort_order=94)
    claim_token: Mapped[str | None] = mapped_column(
        String(32), info={"audit": False}, sort_order=95
    )
    provider_id: Mapped[str | None] = mapped_column(String(255), sort_order=96)
    sent_at: Mapped[datetime | None] = mapped_column(sort_order=97)
    error_code: Mapped[str | None] = mapped_column(String(64), sort_order=98)
    error_message: Mapped[str | None] = mapped_column(String(500), sort_order=99)
    trace_context: Mapped[str | None] = mapped_column(
        String(64), info={"audit": False}, sort_order=99
    )
