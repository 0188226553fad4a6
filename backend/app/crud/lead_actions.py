"""What leads do beyond CRUD: text a lead, bill a lead, win a lead on its first payment.

The generated slice (`crud/leads.py` from `docs/specs/lead.yaml`) stores leads; this module
holds the lead tracker's own rules over the generic texts (`crud/messages.py`) and payments
(`crud/payments.py`). An entity that is texted or billed writes a module like this one.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core.errors import LeadHasNoPhoneError, LeadOptedOutError
from backend.app.crud import messages as crud_messages
from backend.app.crud import payments as crud_payments
from backend.app.integrations.stripe import CheckoutProvider
from backend.app.models.lead import Lead, LeadStatus
from backend.app.models.message import Message
from backend.app.models.payment import Payment, PaymentStatus
from backend.app.models.user import User
from backend.app.schemas.message import MessageCreate
from backend.app.schemas.payment import PaymentCreate


async def text_lead(
    session: AsyncSession, *, lead: Lead, data: MessageCreate, sender: User, daily_limit: int
) -> Message:
    """Queue a text to the lead's phone (see `crud.messages.queue_text`).

    Raises:
        LeadHasNoPhoneError: the lead has no phone number.
        LeadOptedOutError: the lead's number replied STOP.
        SmsQuotaExceededError: `sender` queued `daily_limit` texts in the last 24 hours.
    """
    if not lead.phone:
        raise LeadHasNoPhoneError(f"Lead {lead.id} has no phone number to text.")
    if lead.sms_opted_out:
        raise LeadOptedOutError(f"Lead {lead.id} opted out of text messages.")
    return await crud_messages.queue_text(
        session,
        to=lead.phone,
        body=data.body,
        send_at=data.send_at,
        about=lead,
        sender=sender,
        daily_limit=daily_limit,
    )


async def bill_lead(
    session: AsyncSession,
    *,
    lead: Lead,
    data: PaymentCreate,
    creator: User,
    checkout: CheckoutProvider,
) -> Payment:
    """Create a pending payment about the lead (see `crud.payments.create_payment`).

    Raises:
        PaymentProviderError: the provider is down or timed out.
        PaymentRejectedError: the provider refused the amount or currency.
    """
    return await crud_payments.create_payment(
        session,
        about=lead,
        amount=data.amount,
        currency=data.currency,
        description=data.description,
        creator=creator,
        checkout=checkout,
    )


async def on_payment_settled(session: AsyncSession, payment: Payment) -> None:
    """Move the lead to `won` when its first payment is paid.

    A later paid payment does not move it again, so a status set after that stays.
    """
    if payment.status is not PaymentStatus.PAID:
        return
    earlier = await session.scalar(
        select(Payment.id)
        .where(
            Payment.subject_type == payment.subject_type,
            Payment.subject_id == payment.subject_id,
            Payment.status == PaymentStatus.PAID,
            Payment.id != payment.id,
        )
        .limit(1)
    )
    lead = await session.get(Lead, payment.subject_id) if earlier is None else None
    if lead is not None and lead.status is not LeadStatus.WON:
        lead.status = LeadStatus.WON
        await session.flush()
