"""Deliberately broken routes: each line marked `# expect: <rule>` must be reported.

`tests/conform/test_app_rules.py` includes this router in the real app under /api/v1, as
main.py would; nothing else uses it.
"""

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import Select, select

from backend.app.core.access import load_visible
from backend.app.core.deps import CurrentUser, SessionDep
from backend.app.core.errors import LeadHasPaymentsError, NotFoundError, error_responses
from backend.app.core.idempotency import Idempotency
from backend.app.core.pagination import paginate
from backend.app.crud import leads as crud_leads
from backend.app.models.lead import Lead
from backend.app.schemas.common import PageDep
from backend.app.schemas.lead import LeadCreate, LeadPage, LeadRead

router = APIRouter(prefix="/broken", tags=["broken"])


class BrokenSort(StrEnum):
    """Sort orders: `name` has an index, `source` has none, `nickname` is no column."""

    NAME = "name"
    SOURCE = "source"
    NICKNAME = "-nickname"


@router.post(
    "/good",
    response_model=LeadRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(413, 415, 422),
)
async def create_good(body: LeadCreate, user: CurrentUser, session: SessionDep) -> LeadRead:
    """A conforming create: nothing here may be reported."""
    lead = await crud_leads.create_lead(session, data=body, owner=user, phone_region="US")
    return LeadRead.model_validate(lead)


@router.get("/sync", response_model=LeadRead, responses=error_responses(422))
def read_sync(user: CurrentUser) -> LeadRead:  # expect: handler-async
    """A plain `def` handler."""
    raise NotImplementedError


@router.post(  # expect: handler-status
    "/things", response_model=LeadRead, responses=error_responses(413, 415, 422)
)
async def create_without_201(body: LeadCreate) -> LeadRead:
    """A create answering 200."""
    raise NotImplementedError


@router.delete(  # expect: handler-status handler-response-model
    "/things/{thing_id}", responses=error_responses(422)
)
async def delete_with_200(thing_id: int) -> None:
    """A delete answering 200."""


@router.get("/untyped", responses=error_responses(422))  # expect: handler-response-model
async def read_untyped(
    thing,  # expect: handler-typed
    extra: Any,  # expect: handler-typed
) -> dict:  # expect: handler-typed
    """No response model, no types."""
    return {}


@router.get(  # expect: error-documented
    "/leads/{lead_id}",
    response_model=LeadRead,
    responses=error_responses(422),
)
async def read_undocumented(lead_id: int, user: CurrentUser, session: SessionDep) -> LeadRead:
    """Raises NotFoundError in load_visible (and LeadHasPaymentsError itself): neither listed."""
    lead = await load_visible(session, Lead, record_id=lead_id, user=user)
    if lead.id < 0:
        raise LeadHasPaymentsError
    return LeadRead.model_validate(lead)


@router.post(  # expect: error-documented
    "/idempotent",
    response_model=LeadRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(413, 415, 422),
)
async def create_idempotent(
    body: LeadCreate, user: CurrentUser, session: SessionDep, idempotency: Idempotency
) -> LeadRead | Response:
    """Runs through `idempotency.run`, whose key errors (409) are not listed."""

    async def create() -> LeadRead:
        lead = await crud_leads.create_lead(session, data=body, owner=user, phone_region="US")
        return LeadRead.model_validate(lead)

    return await idempotency.run(body, create)


def visible(
    getter: Callable[..., Awaitable[Lead]],
) -> Callable[[int, CurrentUser, SessionDep], Awaitable[Lead]]:
    """A dependency factory: the record the user may see, through `getter`."""

    async def dependency(lead_id: int, user: CurrentUser, session: SessionDep) -> Lead:
        return await getter(session, Lead, record_id=lead_id, user=user)

    return dependency


VisibleLead = Annotated[Lead, Depends(visible(load_visible))]


@router.get(  # expect: error-documented
    "/visible/{lead_id}", response_model=LeadRead, responses=error_responses(422)
)
async def read_visible(lead: VisibleLead) -> LeadRead:
    """Its dependency, made by a factory, raises NotFoundError in load_visible: not listed."""
    return LeadRead.model_validate(lead)


@router.get(  # expect: error-schema
    "/plain-error",
    response_model=LeadRead,
    responses={404: {"model": LeadRead, "description": "Not an ErrorResponse."}},
)
async def read_plain_error(user: CurrentUser) -> LeadRead:
    """Documents a 404 with another schema."""
    try:
        raise NotFoundError
    except NotFoundError:
        raise NotImplementedError from None


@router.get(  # expect: list-bounds
    "/pages", response_model=LeadPage, responses=error_responses(422)
)
async def list_unbounded(
    session: SessionDep,
    limit: int = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> LeadPage:
    """Offset without a maximum, limit without bounds, ordered by name alone."""
    query = select(Lead).limit(limit).offset(offset)
    rows = await session.scalars(query.order_by(Lead.name))  # expect: list-order
    items = [LeadRead.model_validate(row) for row in rows]
    return LeadPage(items=items, total=len(items), limit=limit, offset=offset)


@router.get(  # expect: list-sort list-order
    "/sorted", response_model=LeadPage, responses=error_responses(422)
)
async def list_sorted(session: SessionDep, page: PageDep, sort: BrokenSort) -> LeadPage:
    """A sort value that is no column; another without an index; then no ORDER BY at all."""
    return LeadPage(items=[], total=0, limit=page.limit, offset=page.offset)


@router.get(  # expect: list-order
    "/unordered", response_model=LeadPage, responses=error_responses(422)
)
async def list_unordered(session: SessionDep, page: PageDep) -> LeadPage:
    """No ORDER BY anywhere."""
    rows = await session.scalars(select(Lead).limit(page.limit).offset(page.offset))
    items = [LeadRead.model_validate(row) for row in rows]
    return LeadPage(items=items, total=len(items), limit=page.limit, offset=page.offset)


@router.get("/by-source", response_model=LeadPage, responses=error_responses(422))
async def list_by_source(session: SessionDep, page: PageDep) -> LeadPage:
    """Ordered by (source, id): no index of leads ends with them."""
    query = select(Lead).order_by(Lead.source.desc(), Lead.id.desc())
    rows = await session.scalars(query.limit(page.limit).offset(page.offset))
    items = [LeadRead.model_validate(row) for row in rows]
    return LeadPage(items=items, total=len(items), limit=page.limit, offset=page.offset)


@router.get("/by-creation", response_model=LeadPage, responses=error_responses(422))
async def list_with_a_helper(session: SessionDep, page: PageDep) -> LeadPage:
    """Conforms: a helper adds the id after the sort column (nothing here is reported)."""
    query = _with_tiebreak(select(Lead).order_by(Lead.created_at.desc()), Lead.id.desc())
    rows = await session.scalars(query.limit(page.limit).offset(page.offset))
    items = [LeadRead.model_validate(row) for row in rows]
    return LeadPage(items=items, total=len(items), limit=page.limit, offset=page.offset)


def _with_tiebreak(query: Select[tuple[Lead]], id_column: Any) -> Select[tuple[Lead]]:
    return query.order_by(id_column)


@router.get("/paged-by-source", response_model=LeadPage, responses=error_responses(422))
async def list_paged_by_source(session: SessionDep, page: PageDep) -> LeadPage:
    """The paging helper, given an order that does not end with the id."""
    return await paginate(
        session,
        select(Lead),
        page=page,
        order_by=[Lead.source.desc()],  # expect: list-order
        schema=LeadPage,
    )


@router.get("/paged", response_model=LeadPage, responses=error_responses(422))
async def list_paged(session: SessionDep, page: PageDep) -> LeadPage:
    """Conforms: the paging helper, with a stable order an index serves."""
    order = [Lead.created_at.desc(), Lead.id.desc()]
    return await paginate(session, select(Lead), page=page, order_by=order, schema=LeadPage)
