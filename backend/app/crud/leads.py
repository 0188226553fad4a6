"""Data logic for leads. Functions never commit: the request's unit of work does.

Reads of one lead go through `core.access.visible_record` (the router's `VisibleLead`), and
the list through `owned_by`, so a member only ever reaches their own leads.
"""

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core.access import owned_by
from backend.app.core.errors import InvalidFieldError
from backend.app.core.pagination import ordering, paginate
from backend.app.core.phone import InvalidPhoneNumberError, normalize_phone
from backend.app.models.lead import Lead, LeadStatus
from backend.app.models.user import User
from backend.app.schemas.common import PageParams
from backend.app.schemas.lead import LeadCreate, LeadPage, LeadSort, LeadUpdate

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
    return lead


async def delete_lead(session: AsyncSession, *, lead: Lead) -> None:
    """Delete `lead` and its messages.

    Raises:
        LeadHasPaymentsError: the lead has payments (its billing record stays); the foreign
            key refuses the delete and the unit of work says so (`core/db_errors.py`).
    """
    await session.delete(lead)
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
