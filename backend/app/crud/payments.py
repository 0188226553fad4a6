"""Data logic for payments and the Stripe events applied to them. Functions never commit.

Creating a payment opens its checkout session inside the request, because the caller needs
the `checkout_url` in the answer: the row is inserted and flushed (for its id), the provider
is called, and the session's id and URL are written to the row. If the provider fails, the
error propagates and the request's unit of work rolls the insert back, so no payment without
a checkout session is ever stored.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core import metrics
from backend.app.core.pagination import paginate
from backend.app.integrations.stripe import (
    CheckoutOutcome,
    CheckoutProvider,
    CheckoutRequest,
    WebhookEvent,
)
from backend.app.models.base import utcnow
from backend.app.models.lead import Lead, LeadStatus
from backend.app.models.payment import Payment, PaymentStatus
from backend.app.models.stripe_event import StripeEvent
from backend.app.models.user import User
from backend.app.schemas.common import PageParams
from backend.app.schemas.payment import PaymentCreate, PaymentPage

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
    lead: Lead,
    data: PaymentCreate,
    creator: User,
    checkout: CheckoutProvider,
) -> Payment:
    """Insert a pending payment for `lead` and open its checkout session.

    Raises:
        PaymentProviderError: the provider is down or timed out (the insert is rolled back
            with the request).
        PaymentRejectedError: the provider refused the amount or currency.
    """
    payment = Payment(
        lead_id=lead.id,
        created_by_id=creator.id,
        amount=data.amount,
        currency=data.currency,
        description=data.description,
        status=PaymentStatus.PENDING,
    )
    session.add(payment)
    await session.flush()
    checkout_session = await checkout.create_session(
        CheckoutRequest(
            payment_id=payment.id,
            lead_id=lead.id,
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


async def list_payments(session: AsyncSession, *, lead: Lead, page: PageParams) -> PaymentPage:
    """Return one page of `lead`'s payments, newest first, and how many it has in all."""
    query = select(Payment).where(Payment.lead_id == lead.id)
    order: list[ColumnElement[Any]] = [Payment.created_at.desc(), Payment.id.desc()]
    return await paginate(session, query, page=page, order_by=order, schema=PaymentPage)


async def lead_has_payments(session: AsyncSession, *, lead_id: int) -> bool:
    """Whether any payment belongs to lead `lead_id`."""
    found = await session.scalar(select(Payment.id).where(Payment.lead_id == lead_id).limit(1))
    return found is not None


async def get_by_session_id(session: AsyncSession, *, session_id: str) -> Payment | None:
    """Return the payment whose checkout session is `session_id`, if any."""
    return await session.scalar(select(Payment).where(Payment.provider_payment_id == session_id))


async def apply_checkout_event(session: AsyncSession, *, event: WebhookEvent) -> Payment | None:
    """Apply a verified Stripe event once; return the payment it changed, if any.

    The event id is recorded first, so a redelivered event changes nothing. Only a
    `pending` payment moves (to `paid`, `failed` or `expired`); those are final. A payment
    paid first for its lead moves the lead to `won`.
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
    if payment.status is PaymentStatus.PAID:
        await _mark_lead_won_on_first_payment(session, payment)
    await session.flush()
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


async def _mark_lead_won_on_first_payment(session: AsyncSession, payment: Payment) -> None:
    """Move the lead to `won` when `payment` is its first paid one (see backend_overview.md)."""
    earlier = await session.scalar(
        select(Payment.id)
        .where(
            Payment.lead_id == payment.lead_id,
            Payment.status == PaymentStatus.PAID,
            Payment.id != payment.id,
        )
        .limit(1)
    )
    if earlier is not None:
        return
    lead = await session.get(Lead, payment.lead_id)
    if lead is not None and lead.status is not LeadStatus.WON:
        lead.status = LeadStatus.WON


async def prune_stripe_events(session: AsyncSession, *, before: datetime) -> None:
    """Forget processed Stripe event ids received before `before`.

    Stripe redelivers an event for up to three days, so ids older than that can go.
    """
    await session.execute(delete(StripeEvent).where(StripeEvent.received_at < before))
