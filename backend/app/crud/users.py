"""Data logic for users. Functions never commit: the request's unit of work does."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core.audit import change
from backend.app.core.errors import EmailTakenError, NotFoundError
from backend.app.core.pagination import paginate
from backend.app.crud.audit import record_security_event
from backend.app.models.audit_event import AuditAction
from backend.app.models.user import User, UserRole
from backend.app.schemas.common import PageParams
from backend.app.schemas.user import UserPage, UserUpdate


async def get_user(session: AsyncSession, *, user_id: int) -> User:
    """Return the user with `user_id`.

    Raises:
        NotFoundError: no such user.
    """
    user = await session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"User {user_id} was not found.")
    return user


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    """Return the user with `email` (case-insensitive), or None."""
    return await session.scalar(select(User).where(User.email == email.lower()))


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    hashed_password: str,
    full_name: str | None = None,
    role: UserRole = UserRole.MEMBER,
) -> User:
    """Insert a user; the email is stored lower-cased.

    Raises:
        EmailTakenError: a user with this email already exists (checked here, and by the
            unique constraint when a concurrent sign-up wins the race).
    """
    if await get_user_by_email(session, email=email) is not None:
        raise EmailTakenError
    user = User(
        email=email.lower(),
        hashed_password=hashed_password,
        full_name=full_name,
        role=role,
        is_active=True,
    )
    session.add(user)
    await session.flush()  # a concurrent sign-up that won the race: EmailTakenError (db_errors)
    return user


async def update_user(session: AsyncSession, *, user: User, data: UserUpdate) -> User:
    """Apply the fields set in `data` to `user`; a new role or active flag is a security event."""
    role, active = user.role, user.is_active
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    await session.flush()
    if user.role is not role:
        changes = {"role": change(role, user.role)}
        record_security_event(session, action=AuditAction.ROLE_CHANGED, user=user, changes=changes)
    if user.is_active is not active:
        action = AuditAction.ACTIVATED if user.is_active else AuditAction.DEACTIVATED
        changes = {"is_active": change(active, user.is_active)}
        record_security_event(session, action=action, user=user, changes=changes)
    return user


async def set_password_hash(session: AsyncSession, *, user: User, hashed_password: str) -> None:
    """Replace a user's password hash (after a rehash with stronger parameters)."""
    user.hashed_password = hashed_password
    await session.flush()


async def list_users(session: AsyncSession, *, page: PageParams) -> UserPage:
    """Return one page of users, oldest first, and the total count."""
    return await paginate(
        session, select(User), page=page, order_by=[User.id.asc()], schema=UserPage
    )


async def create_admin(session: AsyncSession, *, email: str, hashed_password: str) -> User:
    """Insert an admin (from the CLI or FIRST_ADMIN_EMAIL); a security event.

    Raises:
        EmailTakenError: a user with this email exists.
    """
    user = await create_user(
        session, email=email, hashed_password=hashed_password, role=UserRole.ADMIN
    )
    record_security_event(session, action=AuditAction.ADMIN_CREATED, user=user)
    return user


async def ensure_admin(session: AsyncSession, *, email: str, hashed_password: str) -> bool:
    """Create an admin with `email` unless a user with that email exists.

    Returns:
        True when a user was created.

    Raises:
        EmailTakenError: another process created the same user at the same moment.
    """
    if await get_user_by_email(session, email=email) is not None:
        return False
    await create_admin(session, email=email, hashed_password=hashed_password)
    return True
