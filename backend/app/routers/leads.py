"""Lead routes: thin handlers over `crud/leads.py`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from backend.app.core.access import visible_record
from backend.app.core.deps import CurrentUser, SessionDep, SettingsDep
from backend.app.core.errors import LeadHasPaymentsError, NotFoundError, error_responses
from backend.app.crud import leads as crud_leads
from backend.app.crud.leads import LeadFilters
from backend.app.models.lead import Lead, LeadStatus
from backend.app.schemas.common import PageDep
from backend.app.schemas.fields import single_line
from backend.app.schemas.lead import LeadCreate, LeadPage, LeadRead, LeadSort, LeadUpdate

router = APIRouter(prefix="/leads", tags=["leads"])

SearchText = Annotated[str, single_line(max_length=200)]
VisibleLead = Annotated[Lead, Depends(visible_record(Lead, path_param="lead_id"))]


@router.post("", response_model=LeadRead, status_code=status.HTTP_201_CREATED)
async def create_lead(
    body: LeadCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> LeadRead:
    """Create a lead owned by the current user; `Location` points at it."""
    lead = await crud_leads.create_lead(
        session, data=body, owner=user, phone_region=settings.default_phone_region
    )
    response.headers["Location"] = f"/api/v1/leads/{lead.id}"
    return LeadRead.model_validate(lead)


@router.get("", response_model=LeadPage)
async def list_leads(
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    status_: Annotated[
        list[LeadStatus] | None, Query(alias="status", description="Repeat to match any of them.")
    ] = None,
    q: Annotated[
        SearchText | None,
        Query(description="Case-insensitive literal substring of name, phone, email."),
    ] = None,
    sort: Annotated[
        LeadSort, Query(description="Sort key; `-` = descending.")
    ] = LeadSort.CREATED_AT_DESC,
) -> LeadPage:
    """Return a page of the leads the user may see (admins: all)."""
    filters = LeadFilters(status=status_, q=q, sort=sort)
    return await crud_leads.list_leads(session, user=user, filters=filters, page=page)


@router.get("/{lead_id}", response_model=LeadRead, responses=error_responses(NotFoundError))
async def read_lead(lead: VisibleLead) -> LeadRead:
    """Return one lead (404 for a missing lead or another member's)."""
    return LeadRead.model_validate(lead)


@router.patch("/{lead_id}", response_model=LeadRead, responses=error_responses(NotFoundError))
async def update_lead(
    lead: VisibleLead, body: LeadUpdate, session: SessionDep, settings: SettingsDep
) -> LeadRead:
    """Change some fields of a lead; `null` clears an optional field.

    Raises:
        InvalidFieldError: a phone is not a valid number (422).
    """
    lead = await crud_leads.update_lead(
        session, lead=lead, data=body, phone_region=settings.default_phone_region
    )
    return LeadRead.model_validate(lead)


@router.delete(
    "/{lead_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(NotFoundError, LeadHasPaymentsError),
)
async def delete_lead(lead: VisibleLead, session: SessionDep) -> None:
    """Delete a lead and its texts (pending ones are never sent).

    Raises:
        LeadHasPaymentsError: the lead has payments (409).
    """
    await crud_leads.delete_lead(session, lead=lead)
