"""Data logic for leads. Functions never commit: the request's unit of work does.

Reads of one lead go through `core.access.visible_record` (the router's `VisibleLead`), and
the list through `owned_by`, so a member only ever reaches their own leads. Texts and
payments are the generic ones (`crud/messages.py`, `crud/payments.py`) about a lead; what is
particular to leads (a lead needs a phone; its first paid payment wins it) is here.
"""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from backend.app.core.access import owned_by
from backend.app.core.errors import (
    InvalidFieldError,
    LeadHasNoPhoneError,
    LeadHasPaymentsError,
    LeadOptedOutError,
)
from backend.app.core.pagination import ordering, paginate
from backend.app.core.phone import InvalidPhoneNumberError, normalize_phone
from backend.app.crud import messages as crud_messages
from backend.app.crud import payments as crud_payments
from backend.app.integrations.stripe import CheckoutProvider
from backend.app.models.lead import Lead, LeadStatus
from backend.app.models.message import Message
from backend.app.models.payment import Payment, PaymentStatus
from backend.app.models.user import User
from backend.app.schemas.common import PageParams
from backend.app.schemas.lead import LeadCreate, LeadPage, LeadSort, LeadUpdate
from backend.app.schemas.message import MessageCreate
from backend.app.schemas.payment import PaymentCreate

SORT_COLUMNS = {"created_at": Lead.created_at, "updated_at": Lead.updated_at, "name": Lead.name}


@dataclass(frozen=True)
class LeadFilters:
    """Filters of the lead list: any of `statuses`, and a literal substring `q`."""

    statuses: list[LeadStatus] | None = None
    q: str | None = None
    sort: LeadSort = LeadSort.CREATED_AT_DESC


async def create_lead(
    session: AsyncSession, *, data: LeadCreate, owner: User, phone_region: str
) -> Lead:
    """Insert a lead owned by `owner`, with its phone normalised to E.164.

    Raises:
        InvalidFieldError: the phone is not a valid number.
    """
    values = data.model_dump()
    values["phone"] = _normalized_phone(values["phone"], phone_region)
    lead = Lead(**values, owner_id=owner.id)
    session.add(lead)
    await session.flush()
    await _load_opt_out(session, lead)
    return lead


async def update_lead(
    session: AsyncSession, *, lead: Lead, data: LeadUpdate, phone_region: str
) -> Lead:
    """Apply the fields set in `data`; `None` clears an optional field.

    Raises:
        InvalidFieldError: the phone is not a valid number.
    """
    changes = data.model_dump(exclude_unset=True)
    if "phone" in changes:
        changes["phone"] = _normalized_phone(changes["phone"], phone_region)
    for field, value in changes.items():
        setattr(lead, field, value)
    await session.flush()
    if "phone" in changes:
        await _load_opt_out(session, lead)
    return lead


async def _load_opt_out(session: AsyncSession, lead: Lead) -> None:
    """Read `sms_opted_out` (a STOP is kept per number) for a new or re-numbered lead."""
    if lead.phone is None:
        set_committed_value(lead, "sms_opted_out", False)
    else:
        await session.refresh(lead, ["sms_opted_out"])


async def delete_lead(session: AsyncSession, *, lead: Lead) -> None:
    """Delete `lead` and its texts (a pending one is never sent).

    The lead goes first: on PostgreSQL that waits for a request texting or billing it right
    now (it locks the lead), so what that request adds is seen by the checks below.

    Raises:
        LeadHasPaymentsError: the lead has payments (its billing record stays).
    """
    await session.delete(lead)
    await session.flush()
    if await crud_payments.has_payments_about(session, about=lead):
        raise LeadHasPaymentsError
    await crud_messages.delete_texts_about(session, about=lead)


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


async def list_leads(
    session: AsyncSession, *, user: User, filters: LeadFilters, page: PageParams
) -> LeadPage:
    """Return one page of the leads `user` may see, and how many match in all."""
    query = select(Lead).where(*owned_by(user, Lead.owner_id), *_filter_conditions(filters))
    order = ordering(filters.sort, SORT_COLUMNS, Lead.id)
    return await paginate(session, query, page=page, order_by=order, schema=LeadPage)


def _filter_conditions(filters: LeadFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(Lead.status.in_(filters.statuses))
    if filters.q:
        columns = (Lead.name, Lead.email, Lead.phone)
        conditions.append(or_(*(col.icontains(filters.q, autoescape=True) for col in columns)))
    return conditions


def _normalized_phone(raw: str | None, region: str) -> str | None:
    if raw is None:
        return None
    try:
        return normalize_phone(raw, default_region=region)
    except InvalidPhoneNumberError as exc:
        raise InvalidFieldError(["body", "phone"], f"Value error, {exc}") from exc
