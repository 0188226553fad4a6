"""The `sms_usage` table: one row per outbound text a user queued, for the daily quota.

Kept apart from `messages` so that deleting a lead (and with it its messages) does not give
the quota back: the limit exists to stop toll fraud, which would otherwise be one DELETE away.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.models.base import Base, BigIntId, utcnow


class SmsUsage(Base):
    """One outbound text queued by `user_id` at `created_at`."""

    __tablename__ = "sms_usage"
    __audited__ = False  # quota bookkeeping, not a business record
    __table_args__ = (Index("ix_sms_usage_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
