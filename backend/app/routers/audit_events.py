"""Audit trail routes: admins read who changed what. No route writes or deletes a row."""

from typing import Annotated

from fastapi import APIRouter, Query

from backend.app.core.deps import AdminUser, SessionDep
from backend.app.core.errors import ForbiddenError, error_responses
from backend.app.crud import audit as crud_audit
from backend.app.crud.audit import AuditFilters
from backend.app.schemas.audit_event import AuditEventPage
from backend.app.schemas.common import PageDep
from backend.app.schemas.fields import MAX_ID, UtcDateTime, single_line

router = APIRouter(prefix="/audit-events", tags=["audit"])

EntityType = Annotated[str, single_line(max_length=100)]
Actor = Annotated[str, single_line(max_length=100)]
Action = Annotated[str, single_line(max_length=50)]


@router.get("", response_model=AuditEventPage, responses=error_responses(ForbiddenError, 422))
async def list_audit_events(
    _admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    entity_type: Annotated[
        EntityType | None, Query(description="The record's kind, e.g. `lead`.")
    ] = None,
    entity_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="The record's id.")] = None,
    actor: Annotated[
        Actor | None, Query(description="Who acted, e.g. `user:7`, `worker`, `webhook:stripe`.")
    ] = None,
    action: Annotated[
        Action | None, Query(description="e.g. `update`, `login_failed`, `role_changed`.")
    ] = None,
    occurred_from: Annotated[
        UtcDateTime | None, Query(alias="from", description="Events at or after this time.")
    ] = None,
    occurred_to: Annotated[
        UtcDateTime | None, Query(alias="to", description="Events before this time.")
    ] = None,
) -> AuditEventPage:
    """Return a page of audit events, newest first (admins only)."""
    filters = AuditFilters(
        entity_type=entity_type,
        entity_id=entity_id,
        actor=actor,
        action=action,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
    )
    return await crud_audit.list_audit_events(session, filters=filters, page=page)
