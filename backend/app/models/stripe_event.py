"""The `stripe_events` table: ids of the Stripe webhook events already handled."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.models.base import Base, utcnow


class StripeEvent(Base):
    """One Stripe event we handled; its id as primary key makes a redelivery a no-op.

    Stripe resends undelivered events for up to three days, so rows older than that may be
    deleted.
    """

    __tablename__ = "stripe_events"
    __audited__ = False  # delivery bookkeeping, not a business record

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # evt_...
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
