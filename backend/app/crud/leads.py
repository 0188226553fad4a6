"""Data logic for leads. Functions never commit: the request's unit of work does.

Owner scoping lives in `_visible_to`: every read goes through it, so a member can only ever
reach their own leads, and someone else's lead is indistinguishable from a missing one.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core.errors import InvalidFieldError, LeadHasPaymentsError, NotFoundError
from backend.app.core.phone import InvalidPhoneNumberError, normalize_phone
from backend.app.models.lead import Lead, LeadStatus
from backend.app.models.payment import Payment
from backend.app.models.user import User
from backend.app.schemas.common import PageParams
from backend.app.schemas.lead import LeadCreate, LeadSort, LeadUpdate

_SORT_COLUMNS = {
    LeadSort.CREATED_AT: Lead.created_at,
    LeadSort.UPDATED_AT: Lead.updated_at,
    LeadSort.NAME: Lead.name,
}


@dataclass(frozen=True)
class LeadFilters:
    """Filters of the lead list: any of `statuses`, and a literal substring `q`."""

    statuses: list[LeadStatus] | None = None
    q: str | None = None
    sort: LeadSort = LeadSort.CREATED_AT_DESC


def _visible_to(user: User) -> list[ColumnElement[bool]]:
    """Return the conditions that limit leads to those `user` may see."""
    return [] if user.is_admin else [Lead.owner_id == user.id]


async def get_lead(session: AsyncSession, *, lead_id: int, user: User) -> Lead:
    """Return lead `lead_id` if `user` may see it.

    Raises:
        NotFoundError: no such lead, or it belongs to another member.
    """
    lead = await session.scalar(select(Lead).where(Lead.id == lead_id, *_visible_to(user)))
    if lead is None:
        raise NotFoundError(f"Lead {lead_id} was not found.")
    return lead


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
    """Delete `lead`.

    Raises:
        LeadHasPaymentsError: the lead has payments (its billing record stays).
    """
    if await session.scalar(select(Payment.id).where(Payment.lead_id == lead.id).limit(1)):
        raise LeadHasPaymentsError
    await session.delete(lead)
    await session.flush()


async def list_leads(
    session: AsyncSession, *, user: User, filters: LeadFilters, page: PageParams
) -> tuple[list[Lead], int]:
    """Return one page of the leads `user` may see, and how many match in all."""
    conditions = [*_visible_to(user), *_filter_conditions(filters)]
    total = await session.scalar(select(func.count(Lead.id)).where(*conditions))
    query = _sorted(select(Lead).where(*conditions), filters.sort)
    rows = await session.scalars(query.limit(page.limit).offset(page.offset))
    return list(rows), total or 0


def _filter_conditions(filters: LeadFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(Lead.status.in_(filters.statuses))
    if filters.q:
        conditions.append(
            or_(
                *(
                    col.icontains(filters.q, autoescape=True)
                    for col in (Lead.name, Lead.email, Lead.phone)
                )
            )
        )
    return conditions


def _sorted(query: Select[Lead], sort: LeadSort) -> Select[Lead]:
    """Order by the sort column, then by id in the same direction (stable paging)."""
    descending = sort.value.startswith("-")
    column: Any = _SORT_COLUMNS[LeadSort(sort.value.lstrip("-"))]
    if descending:
        return query.order_by(column.desc(), Lead.id.desc())
    return query.order_by(column.asc(), Lead.id.asc())


def _normalized_phone(raw: str | None, region: str) -> str | None:
    if raw is None:
        return None
    try:
        return normalize_phone(raw, default_region=region)
    except InvalidPhoneNumberError as exc:
        raise InvalidFieldError(["body", "phone"], f"Value error, {exc}") from exc
