"""The `payments` table: a charge for a record of any entity, paid on a hosted checkout page."""

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.models.base import Base, BigIntId, TimestampMixin, enum_column


class PaymentStatus(StrEnum):
    """Where a payment stands: `pending` until the provider says `paid`, `failed` or `expired`.

    The three outcomes are final: a late or replayed webhook event never changes them.
    """

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


class Payment(TimestampMixin, Base):
    """One charge for a record (`subject_type` is its table, `subject_id` its id).

    A record with payments keeps them: its entity's delete refuses while any exist
    (`crud.payments.has_payments_about`).

    `provider_payment_id` is the checkout session's id (`cs_...`); `checkout_url` its page.
    Both are set in the same transaction that inserts the row, so neither is ever missing
    from a stored payment.
    """

    __tablename__ = "payments"
    __table_args__ = (
        Index(
            "ix_payments_subject_type_subject_id_created_at_id",
            "subject_type",
            "subject_id",
            "created_at",
            "id",
        ),
        UniqueConstraint("provider_payment_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[PaymentStatus] = mapped_column(
        enum_column(PaymentStatus), default=PaymentStatus.PENDING
    )
    checkout_url: Mapped[str | None] = mapped_column(Text)
    provider_payment_id: Mapped[str | None] = mapped_column(String(255))
