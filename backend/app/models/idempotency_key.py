"""The `idempotency_keys` table: one row per (user, Idempotency-Key); see core/idempotency.py."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.models.base import Base, BigIntId, utcnow


class IdempotencyKey(Base):
    """A request made with an Idempotency-Key, and, once it succeeded, its response.

    The unique (user_id, key) pair is the lock: a second request with the key cannot insert
    its own row. `response_status` is null while the first request still runs.
    """

    __tablename__ = "idempotency_keys"
    __audited__ = False  # bookkeeping of core/idempotency.py, not a business record
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
