"""The `audit_events` table: who changed which record, how, when and from where.

Rows are written by `core/audit.py` in the same transaction as the change they describe,
never updated, and deleted only by the retention prune (`crud/audit.py`); on PostgreSQL a
trigger refuses any other UPDATE or DELETE (migration 0004).
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.models.base import Base, BigIntId, utcnow


class AuditAction(StrEnum):
    """What happened: a change of a record, or a security event."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    REGISTERED = "registered"
    REGISTRATION_REFUSED = "registration_refused"
    ROLE_CHANGED = "role_changed"
    ACTIVATED = "activated"
    DEACTIVATED = "deactivated"
    ADMIN_CREATED = "admin_created"


class AuditEvent(Base):
    """One change of a business record, or one security event.

    `actor` is `user:<id>`, `anonymous` (a request without a token), `system` (start-up),
    `worker`, `webhook:<provider>` or `cli`. `changes` maps each changed field to
    `{"old": ..., "new": ...}`; secrets are `"[redacted]"`, long text is cut short.
    """

    __tablename__ = "audit_events"
    __audited__: ClassVar[bool] = False  # the trail itself is not audited
    __table_args__ = (
        Index("ix_audit_events_occurred_at_id", "occurred_at", "id"),
        Index(
            "ix_audit_events_entity_type_entity_id_occurred_at_id",
            "entity_type",
            "entity_id",
            "occurred_at",
            "id",
        ),
        Index("ix_audit_events_actor_occurred_at_id", "actor", "occurred_at", "id"),
        Index("ix_audit_events_action_occurred_at_id", "action", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    # No foreign key: the trail outlives the users it names, and is never updated.
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(100))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    changes: Mapped[dict[str, Any] | None] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql")
    )
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_ip: Mapped[str | None] = mapped_column(String(64))
