"""Who may see which record: owner scoping, and the dependency that loads a visible record.

A member sees the records they own; an admin sees all. Every read of an owned entity goes
through `owned_by`, and a handler that works on one record declares it as a parameter::

    VisibleLead = Annotated[Lead, Depends(visible_record(Lead, path_param="lead_id"))]

    @router.get("/{lead_id}")
    async def read_lead(lead: VisibleLead) -> LeadRead: ...

`visible_record` reads the id from the path, loads the record if the current user may see
it, and answers 404 otherwise: another member's record is indistinguishable from a missing
one, and no handler can forget the check. It reads the current user and the record in one
statement (the user is needed anyway: a deactivated user is refused on every request), so
a handler that also declares `user: CurrentUser` gets that user without another query.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Path, Request
from sqlalchemy import ColumnElement, Select, and_, bindparam, inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from backend.app.core.db_errors import entity_label
from backend.app.core.deps import (
    BearerToken,
    SessionDep,
    accept_user,
    authenticated_user_id,
    loads_current_user,
)
from backend.app.core.errors import NotFoundError
from backend.app.models.base import Base
from backend.app.models.user import User, UserRole
from backend.app.schemas.fields import MAX_ID

ModelT = TypeVar("ModelT", bound=Base)


def owned_by(user: User, owner_column: InstrumentedAttribute[int]) -> list[ColumnElement[bool]]:
    """Return the conditions that limit rows to those `user` may see (none for an admin)."""
    return [] if user.is_admin else [owner_column == user.id]


async def load_visible(
    session: AsyncSession,
    model: type[ModelT],
    *,
    record_id: int,
    user: User,
    owner_column: InstrumentedAttribute[int] | None = None,
) -> ModelT:
    """Return the `model` row with `record_id` if `user` may see it.

    Args:
        session: the request's session.
        model: the entity's model.
        record_id: the primary key.
        user: the current user (an admin sees every row, a member their own).
        owner_column: the column naming the row's owner (default: `model.owner_id`; a model
            without one is shared by every user).

    Raises:
        NotFoundError: no such record, or it belongs to another member.
    """
    id_column = inspect(model).primary_key[0]
    owner = owner_column if owner_column is not None else getattr(model, "owner_id", None)
    scope = owned_by(user, owner) if owner is not None else []
    record = await session.scalar(select(model).where(id_column == record_id, *scope))
    if record is None:
        label = entity_label(model.__tablename__).capitalize()
        raise NotFoundError(f"{label} {record_id} was not found.")
    return record


async def require_visible(
    session: AsyncSession, model: type[ModelT], *, record_id: int, user: User, field: str
) -> None:
    """Refuse a request body that refers to a record the user may not see (or none).

    404, as the same record in a path would answer (and as a foreign key refusing the write
    does, when a concurrent delete overtakes this check).

    Raises:
        NotFoundError: no such record, or another member's; the message names `field`.
    """
    try:
        await load_visible(session, model, record_id=record_id, user=user)
    except NotFoundError as exc:
        raise NotFoundError(f"{exc.message} ({field})") from exc


def visible_record(
    model: type[ModelT],
    *,
    path_param: str,
    owner_column: InstrumentedAttribute[int] | None = None,
) -> Callable[..., Awaitable[ModelT]]:
    """Return a dependency that loads the `model` row named in the path, if the user may see it.

    Args:
        model: the entity's model; its primary key is compared with the path parameter.
        path_param: the name of the id in the route's path, e.g. `lead_id`.
        owner_column: the column naming the row's owner (default: `model.owner_id`).

    Returns:
        An async dependency for `Annotated[Model, Depends(...)]`.
    """
    description = f"The {entity_label(model.__tablename__)}'s id."
    statement = user_and_visible_record(model, owner_column)

    @loads_current_user
    async def load_visible_record(
        record_id: Annotated[int, Path(alias=path_param, ge=1, le=MAX_ID, description=description)],
        request: Request,
        session: SessionDep,
        token: BearerToken,
    ) -> ModelT:
        """Return the record, or raise NotFoundError (missing, or not the user's to see).

        Raises:
            UnauthorizedError: no valid token, or its user is gone or inactive.
            NotFoundError: no such record, or it belongs to another member.
        """
        user_id = authenticated_user_id(request, token)
        user, record = await load_user_and_record(session, statement, user_id, record_id)
        accept_user(request, user)
        if record is None:
            label = entity_label(model.__tablename__).capitalize()
            raise NotFoundError(f"{label} {record_id} was not found.")
        return record

    return load_visible_record


async def load_user_and_record(
    session: AsyncSession, statement: Select[User, ModelT], user_id: int, record_id: int
) -> tuple[User | None, ModelT | None]:
    """Run a `user_and_visible_record` statement: the user, and the record if they may see it.

    Args:
        session: the request's session.
        statement: built once per model by `user_and_visible_record`.
        user_id: the token's user.
        record_id: the record's primary key.

    Returns:
        The user (None if gone) and the record (None if missing or not theirs to see).
    """
    params = {"user_id": user_id, "record_id": record_id}
    row = (await session.execute(statement, params)).first()
    return (row[0], row[1]) if row is not None else (None, None)


def user_and_visible_record(
    model: type[ModelT], owner_column: InstrumentedAttribute[int] | None = None
) -> Select[User, ModelT]:
    """One statement for the user and the record: the record's columns are NULL if unseen.

    `users LEFT JOIN model ON model.id = :record_id AND (user is admin OR owns it)`, with
    `:user_id` and `:record_id` bound at each run (`load_user_and_record`).

    Args:
        model: the entity's model.
        owner_column: the column naming the row's owner (default: `model.owner_id`; none:
            shared by every user).

    Returns:
        The statement, to build once per model.
    """
    id_column = inspect(model).primary_key[0]
    owner = owner_column if owner_column is not None else getattr(model, "owner_id", None)
    visible = [id_column == bindparam("record_id")]
    if owner is not None:
        visible.append(or_(User.role == UserRole.ADMIN, owner == User.id))
    return (
        select(User, model).outerjoin(model, and_(*visible)).where(User.id == bindparam("user_id"))
    )
