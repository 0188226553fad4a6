"""User routes: the current user, and admin management of users."""

from typing import Annotated

from fastapi import APIRouter, Path

from backend.app.core.deps import AdminUser, CurrentUser, SessionDep
from backend.app.core.errors import (
    ForbiddenError,
    NotFoundError,
    SelfModificationError,
    error_responses,
)
from backend.app.crud import users as crud_users
from backend.app.models.user import UserRole
from backend.app.schemas.common import PageDep
from backend.app.schemas.fields import MAX_ID
from backend.app.schemas.user import UserPage, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id.")]


@router.get("/me", response_model=UserRead)
async def read_current_user(user: CurrentUser) -> UserRead:
    """Return the user the token belongs to."""
    return UserRead.model_validate(user)


@router.get("", response_model=UserPage, responses=error_responses(ForbiddenError, 422))
async def list_users(_admin: AdminUser, session: SessionDep, page: PageDep) -> UserPage:
    """Return a page of users, oldest first (admins only)."""
    return await crud_users.list_users(session, page=page)


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses=error_responses(ForbiddenError, NotFoundError, SelfModificationError, 413, 415, 422),
)
async def update_user(
    user_id: UserId, body: UserUpdate, admin: AdminUser, session: SessionDep
) -> UserRead:
    """Change a user's role, active flag or name (admins only).

    Raises:
        NotFoundError: no such user.
        SelfModificationError: an admin tried to demote or deactivate themselves.
    """
    user = await crud_users.get_user(session, user_id=user_id)
    demotes = body.role is not None and body.role is not UserRole.ADMIN
    if user.id == admin.id and (demotes or body.is_active is False):
        raise SelfModificationError
    user = await crud_users.update_user(session, user=user, data=body)
    return UserRead.model_validate(user)
