"""Data logic for leads. Functions never commit: the request's unit of work does.

Reads of one lead go through `core.access.visible_record` (the router's `VisibleLead`), and the
list through `owned_by`, so a member only ever reaches their own leads.
"""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core.access import owned_by
from backend.app.core.errors import LeadHasPaymentsError
from backend.app.core.pagination import ordering, paginate
from backend.app.core.phone import normalized_phone
from backend.app.crud import messages as crud_messages
from backend.app.crud import payments as crud_payments
from backend.app.models.lead import Lead, LeadStatus
from backend.app.models.user import User
from backend.app.schemas.common import PageParams
from backend.app.schemas.lead import LeadCreate, LeadPage, LeadSort, LeadUpdate

SORT_COLUMNS = {"created_at": Lead.created_at, "updated_at": Lead.updated_at, "name": Lead.name}


@dataclass(frozen=True)
class LeadFilters:
    """Filters of the lead list; `None` filters nothing."""

    status: list[LeadStatus] | None = None
    q: str | None = None
    sort: LeadSort = LeadSort.CREATED_AT_DESC


async def create_lead(
    session: AsyncSession, *, data: LeadCreate, owner: User, phone_region: str
) -> Lead:
    """Insert a lead owned by `owner`.

    Raises:
        InvalidFieldError: a phone is not a valid number.
    """
    values = data.model_dump()
    values["phone"] = normalized_phone(values["phone"], region=phone_region, field="phone")
    lead = Lead(**values, owner_id=owner.id)
    session.add(lead)
    await session.flush()
    await crud_messages.refresh_opt_out(session, lead, flag="sms_opted_out", phone=lead.phone)
    return lead


async def update_lead(
    session: AsyncSession, *, lead: Lead, data: LeadUpdate, phone_region: str
) -> Lead:
    """Apply the fields set in `data`; `None` clears an optional field.

    Raises:
        InvalidFieldError: a phone is not a valid number.
    """
    changes = data.model_dump(exclude_unset=True)
    if "phone" in changes:
        changes["phone"] = normalized_phone(changes["phone"], region=phone_region, field="phone")
    for field, value in changes.items():
        setattr(lead, field, value)
    await session.flush()
    if "phone" in changes:
        await crud_messages.refresh_opt_out(session, lead, flag="sms_opted_out", phone=lead.phone)
    return lead


async def delete_lead(session: AsyncSession, *, lead: Lead) -> None:
    """Delete `lead` and its texts (a pending one is never sent).

    The lead goes first: on PostgreSQL that waits for a request texting or billing it
    right now (it locks the record), so what that request adds is seen below.

    Raises:
        LeadHasPaymentsError: the lead has payments (its billing record stays).
    """
    await session.delete(lead)
    await session.flush()
    if await crud_payments.has_payments_about(session, about=lead):
        raise LeadHasPaymentsError
    await crud_messages.delete_texts_about(session, about=lead)


async def list_leads(
    session: AsyncSession, *, user: User, filters: LeadFilters, page: PageParams
) -> LeadPage:
    """Return one page of the leads `user` may see, and how many match in all."""
    query = select(Lead).where(*owned_by(user, Lead.owner_id), *_filter_conditions(filters))
    order = ordering(filters.sort, SORT_COLUMNS, Lead.id)
    return await paginate(session, query, page=page, order_by=order, schema=LeadPage)


def _filter_conditions(filters: LeadFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.status:
        conditions.append(Lead.status.in_(filters.status))
    if filters.q:
        columns = (Lead.name, Lead.phone, Lead.email)
        conditions.append(or_(*(col.icontains(filters.q, autoescape=True) for col in columns)))
    return conditions
