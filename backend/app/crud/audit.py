"""Data logic of the audit trail: security events, the admin list, the retention prune.

Changes of records are recorded by the session hooks of `core/audit.py`; nothing here is
called per entity. Functions never commit, except `record_refusal`, whose event outlives
the request it refuses (that request rolls back).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core.audit import Changes, entity_type_of, record_event
from backend.app.core.pagination import paginate
from backend.app.models.audit_event import AuditAction, AuditEvent
from backend.app.models.user import User
from backend.app.schemas.audit_event import AuditEventPage
from backend.app.schemas.common import PageParams

USER_ENTITY = entity_type_of(User)


@dataclass(frozen=True)
class AuditFilters:
    """Filters of the audit list; `occurred_from` inclusive, `occurred_to` exclusive."""

    entity_type: str | None = None
    entity_id: int | None = None
    actor: str | None = None
    action: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


def record_security_event(
    session: AsyncSession,
    *,
    action: AuditAction,
    user: User | None,
    changes: Changes | None = None,
) -> None:
    """Record a security event about `user` (None: no such account) in the transaction."""
    record_event(
        session,
        action=action,
        entity_type=USER_ENTITY,
        entity_id=user.id if user is not None else None,
        changes=changes,
    )


async def record_refusal(
    factory: async_sessionmaker[AsyncSession],
    *,
    action: AuditAction,
    user: User | None,
    changes: Changes | None = None,
) -> None:
    """Record a refused security event (a failed login) in a short transaction of its own.

    The request that is refused rolls back, and would take the row with it.
    """
    async with factory.begin() as session:
        record_security_event(session, action=action, user=user, changes=changes)


async def list_audit_events(
    session: AsyncSession, *, filters: AuditFilters, page: PageParams
) -> AuditEventPage:
    """Return one page of audit events, newest first, and how many match in all."""
    query = select(AuditEvent).where(*_filter_conditions(filters))
    order: list[ColumnElement[Any]] = [AuditEvent.occurred_at.desc(), AuditEvent.id.desc()]
    return await paginate(session, query, page=page, order_by=order, schema=AuditEventPage)


def _filter_conditions(filters: AuditFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    equal: list[tuple[Any, object]] = [
        (AuditEvent.entity_type, filters.entity_type),
        (AuditEvent.entity_id, filters.entity_id),
        (AuditEvent.actor, filters.actor),
        (AuditEvent.action, filters.action),
    ]
    conditions.extend(column == value for column, value in equal if value is not None)
    if filters.occurred_from is not None:
        conditions.append(AuditEvent.occurred_at >= filters.occurred_from)
    if filters.occurred_to is not None:
        conditions.append(AuditEvent.occurred_at < filters.occurred_to)
    return conditions


async def prune_audit_events(session: AsyncSession, *, before: datetime) -> int:
    """Delete the audit events that occurred before `before`; return how many went.

    The only DELETE the table allows: on PostgreSQL its trigger refuses any other, and lets
    this one through because the transaction sets `app.audit_prune` for just this statement.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(select(func.set_config("app.audit_prune", "on", True)))
    result = await session.execute(delete(AuditEvent).where(AuditEvent.occurred_at < before))
    if postgres:
        await session.execute(select(func.set_config("app.audit_prune", "off", True)))
    return int(getattr(result, "rowcount", 0) or 0)
