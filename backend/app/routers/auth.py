"""Public auth routes: sign up and log in (OAuth2 password flow)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core import metrics
from backend.app.core.audit import change
from backend.app.core.audit_context import set_user
from backend.app.core.deps import (
    HasherDep,
    LoginFailuresDep,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
)
from backend.app.core.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    RateLimitedError,
    RegistrationClosedError,
    ServiceUnavailableError,
    error_responses,
)
from backend.app.core.security import create_access_token
from backend.app.crud import audit as crud_audit
from backend.app.crud import users as crud_users
from backend.app.models.audit_event import AuditAction
from backend.app.models.user import User
from backend.app.schemas.user import LoginForm, Token, UserRead, UserRegister

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(RegistrationClosedError, EmailTakenError, 413, 415, 422),
)
async def register(
    body: UserRegister,
    session: SessionDep,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    hasher: HasherDep,
) -> UserRead:
    """Create a member account.

    Raises:
        RegistrationClosedError: `REGISTRATION_OPEN` is false.
        EmailTakenError: the email is taken (case-insensitive).
    """
    if not settings.registration_open:
        await _refuse_registration(sessions, "registration_closed")
        raise RegistrationClosedError
    try:
        user = await crud_users.create_user(
            session,
            email=body.email,
            hashed_password=await hasher.hash(body.password),
            full_name=body.full_name,
        )
    except EmailTakenError:
        await _refuse_registration(sessions, "email_taken")
        raise
    crud_audit.record_security_event(session, action=AuditAction.REGISTERED, user=user)
    return UserRead.model_validate(user)


async def _refuse_registration(sessions: async_sessionmaker[AsyncSession], reason: str) -> None:
    await crud_audit.record_refusal(
        sessions,
        action=AuditAction.REGISTRATION_REFUSED,
        user=None,
        changes={"reason": change(None, reason)},
    )


@router.post(
    "/token",
    response_model=Token,
    responses=error_responses(InvalidCredentialsError, RateLimitedError, ServiceUnavailableError),
)
async def login(
    request: Request,
    response: Response,
    form: Annotated[LoginForm, Form()],
    session: SessionDep,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    hasher: HasherDep,
    failures: LoginFailuresDep,
) -> Token:
    """Exchange email (`username`) and password for a bearer token.

    More than `LOGIN_MAX_FAILURES` failures a minute for one email or one client address
    answer 429 with `Retry-After`, whatever the password. The token is never cached
    (`Cache-Control: no-store`, `Pragma: no-cache`, as RFC 6749 section 5.1 asks).

    Raises:
        RateLimitedError: too many recent failures for this email or client.
        ServiceUnavailableError: the shared login limiter (Redis) is unreachable.
        InvalidCredentialsError: wrong email or password, or the account is deactivated.
    """
    client = request.client.host if request.client else "unknown"
    keys = [f"login:client:{client}", f"login:email:{form.username.strip().lower()}"]
    wait = await failures.blocked_for(keys)
    if wait:
        metrics.record_rate_limit_refusal("login")
        raise RateLimitedError("Too many failed logins; retry later.", retry_after=wait)
    user = await crud_users.get_user_by_email(session, email=form.username.strip())
    # Verify against a dummy hash for unknown emails, so timing does not reveal accounts.
    valid = await hasher.verify(user.hashed_password if user else hasher.dummy_hash, form.password)
    if user is None or not valid or not user.is_active:
        await failures.record_failure(keys)
        metrics.record_login_failure()
        reason = _login_failure_reason(user, valid=valid)
        await crud_audit.record_refusal(
            sessions,
            action=AuditAction.LOGIN_FAILED,
            user=user,
            changes={"reason": change(None, reason)},
        )
        raise InvalidCredentialsError
    set_user(user.id)  # the actor of the rest of this request
    crud_audit.record_security_event(session, action=AuditAction.LOGIN_SUCCEEDED, user=user)
    if hasher.needs_rehash(user.hashed_password):
        await crud_users.set_password_hash(
            session, user=user, hashed_password=await hasher.hash(form.password)
        )
    token, expires_in = create_access_token(user.id, settings)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return Token(access_token=token, expires_in=expires_in)


def _login_failure_reason(user: User | None, *, valid: bool) -> str:
    """Why a login failed, for the audit trail (the client is told only that it failed)."""
    if user is None:
        return "unknown_email"
    return "wrong_password" if not valid else "inactive_user"
