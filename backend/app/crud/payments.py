"""Data logic for payments about any record, and the Stripe events applied to them.

Functions never commit: the request's unit of work does. Creating a payment opens its
checkout session inside the request, because the caller needs the `checkout_url` in the
answer: the row is inserted and flushed (for its id), the record it is about is checked and
locked (`core/subjects.py`), the provider is called, and the session's id and URL are written
to the row. If the provider fails, the error propagates and the request's unit of work rolls
the insert back, so no payment without a checkout session is ever stored.

When an event settles a payment (`paid`, `failed` or `expired`, all final), the entity the
payment is about hears of it through its `SubjectType.on_payment_settled` hook, in the same
unit of work (`crud/leads.py` moves a lead to `won` on its first paid payment).
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core import metrics
from backend.app.core.pagination import paginate
from backend.app.core.subjects import SubjectType, lock_subject, subject_of
from backend.app.integrations.stripe import (
    CheckoutOutcome,
    CheckoutProvider,
    CheckoutRequest,
    WebhookEvent,
)
from backend.app.models.base import Base, utcnow
from backend.app.models.payment import Payment, PaymentStatus
from backend.app.models.stripe_event import StripeEvent
from backend.app.models.user import User
from backend.app.schemas.common import Page, PageParams

PageT = TypeVar("PageT", bound=Page[Any])

_STATUS_BY_OUTCOME = {
    CheckoutOutcome.PAID: PaymentStatus.PAID,
    CheckoutOutcome.FAILED: PaymentStatus.FAILED,
    CheckoutOutcome.EXPIRED: PaymentStatus.EXPIRED,
}


def provider_idempotency_key(payment: Payment) -> str:
    """The provider's Idempotency-Key for `payment`: stable for the row, unique across rows.

    The creation time is part of it so that ids reused after a rollback (SQLite) or a reset
    development database never collide with a key the provider still remembers (24 h).
    """
    return f"payment-{payment.id}-{int(payment.created_at.timestamp() * 1_000_000)}"


async def create_payment(
    session: AsyncSession,
    *,
    about: Base,
    amount: int,
    currency: str,
    description: str | None,
    creator: User,
    checkout: CheckoutProvider,
) -> Payment:
    """Insert a pending payment about a record and open its checkout session.

    Args:
        session: the request's unit of work.
        about: the record billed (it must still exist).
        amount: in the currency's minor units.
        currency: lower-case ISO 4217 code.
        description: what the payer sees, or None.
        creator: the user who bills.
        checkout: the billing provider.

    Raises:
        NotFoundError: `about` was deleted by a concurrent request.
        PaymentProviderError: the provider is down or timed out (the insert is rolled back
            with the request).
        PaymentRejectedError: the provider refused the amount or currency.
    """
    subject = subject_of(about)
    payment = Payment(
        subject_type=subject.type,
        subject_id=subject.id,
        created_by_id=creator.id,
        amount=amount,
        currency=currency,
        description=description,
        status=PaymentStatus.PENDING,
    )
    session.add(payment)
    await session.flush()
    await lock_subject(session, subject)
    checkout_session = await checkout.create_session(
        CheckoutRequest(
            payment_id=payment.id,
            subject_type=subject.type,
            subject_id=subject.id,
            amount=payment.amount,
            currency=payment.currency,
            description=payment.description,
            idempotency_key=provider_idempotency_key(payment),
        )
    )
    payment.provider_payment_id = checkout_session.id
    payment.checkout_url = checkout_session.url
    await session.flush()
    return payment


def _about(record: Base) -> list[ColumnElement[bool]]:
    subject = subject_of(record)
    return [Payment.subject_type == subject.type, Payment.subject_id == subject.id]


async def list_payments(
    session: AsyncSession, *, about: Base, page: PageParams, schema: type[PageT]
) -> PageT:
    """Return one page of the payments about a record, newest first, and how many in all."""
    query = select(Payment).where(*_about(about))
    order: list[ColumnElement[Any]] = [Payment.created_at.desc(), Payment.id.desc()]
    return await paginate(session, query, page=page, order_by=order, schema=schema)


async def has_payments_about(session: AsyncSession, *, about: Base) -> bool:
    """Whether any payment is about the record (its entity's delete refuses then)."""
    found = await session.scalar(select(Payment.id).where(*_about(about)).limit(1))
    return found is not None


async def get_by_session_id(session: AsyncSession, *, session_id: str) -> Payment | None:
    """Return the payment whose checkout session is `session_id`, if any."""
    return await session.scalar(select(Payment).where(Payment.provider_payment_id == session_id))


async def apply_checkout_event(
    session: AsyncSession, *, event: WebhookEvent, subject_types: Mapping[str, SubjectType]
) -> Payment | None:
    """Apply a verified Stripe event once; return the payment it changed, if any.

    The event id is recorded first, so a redelivered event changes nothing. Only a
    `pending` payment moves (to `paid`, `failed` or `expired`); those are final. The entity
    the payment is about is then told, through its `on_payment_settled` hook.
    """
    if not await _record_event(session, event):
        return None
    if event.outcome is None or event.payment_id is None:
        return None
    payment = await session.get(Payment, event.payment_id, with_for_update=True)
    if payment is None or payment.provider_payment_id != event.session_id:
        return None
    if payment.status is not PaymentStatus.PENDING:
        return None
    payment.status = _STATUS_BY_OUTCOME[event.outcome]
    metrics.record_payment(payment.status.value)
    await session.flush()
    subject_type = subject_types.get(payment.subject_type)
    if subject_type is not None and subject_type.on_payment_settled is not None:
        await subject_type.on_payment_settled(session, payment)
    return payment


async def _record_event(session: AsyncSession, event: WebhookEvent) -> bool:
    """Insert the event's id unless present; return whether this is its first delivery.

    `ON CONFLICT DO NOTHING` makes two concurrent deliveries safe: the second waits for the
    first and then inserts nothing.
    """
    values = {"id": event.id, "type": event.type[:100], "received_at": utcnow()}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(StripeEvent).values(values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def prune_stripe_events(session: AsyncSession, *, before: datetime) -> None:
    """Forget processed Stripe event ids received before `before`.

    Stripe redelivers an event for up to three days, so ids older than that can go.
    """
    await session.execute(delete(StripeEvent).where(StripeEvent.received_at < before))
