"""FastAPI dependencies shared by every router, as `Annotated` aliases.

Handlers declare what they need (`session: SessionDep`, `user: CurrentUser`) and FastAPI
injects it; nothing is imported as a module-level global. Dependencies are `async def`
even when they do not await: FastAPI runs a plain `def` one in a worker thread, a thread hop
on every request that uses it.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.util import identity_key

from backend.app.core.audit_context import set_actor, set_user
from backend.app.core.config import Settings
from backend.app.core.database import get_session
from backend.app.core.errors import ForbiddenError, InvalidFieldError, UnauthorizedError
from backend.app.core.rate_limit import FailureCounter
from backend.app.core.security import PasswordHasher, VerifiedTokens
from backend.app.integrations.fhir import EhrClient
from backend.app.integrations.stripe import CheckoutProvider
from backend.app.models.user import User

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a URL, not a secret

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)
# Built once: `session.get` builds its SELECT anew on every call.
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
DependencyT = TypeVar("DependencyT", bound=Callable[..., Awaitable[Any]])
_USER_LOADERS: set[Callable[..., Awaitable[Any]]] = set()


async def get_app_settings(request: Request) -> Settings:
    """Return the settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_password_hasher(request: Request) -> PasswordHasher:
    """Return the app's password hasher (created in the lifespan)."""
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


async def get_login_failures(request: Request) -> FailureCounter:
    """Return the counter of failed logins (created in the lifespan)."""
    counter: FailureCounter = request.app.state.login_failures
    return counter


async def get_session_factory(request: Request) -> async_sessionmaker[AsyncSession]:
    """Return the session factory, for work that must commit apart from the request's."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    return factory


def audit_actor(actor: str) -> Callable[[], Awaitable[None]]:
    """Return a dependency that names `actor` (`webhook:stripe`) in the audit trail."""

    async def name_actor() -> None:
        set_actor(actor)

    return name_actor


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionFactoryDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_session_factory)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
HasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
LoginFailuresDep = Annotated[FailureCounter, Depends(get_login_failures)]


async def get_checkout_provider(request: Request) -> CheckoutProvider:
    """Return the billing provider (Stripe or the fake) created in the lifespan."""
    provider: CheckoutProvider = request.app.state.checkout_provider
    return provider


CheckoutProviderDep = Annotated[CheckoutProvider, Depends(get_checkout_provider)]


async def get_ehr_client(request: Request) -> EhrClient:
    """Return the EHR client (FHIR, the in-process fake, or disabled) made in the lifespan."""
    client: EhrClient = request.app.state.ehr_client
    return client


EhrClientDep = Annotated[EhrClient, Depends(get_ehr_client)]


BearerToken = Annotated[str | None, Depends(oauth2_scheme)]


def authenticated_user_id(request: Request, token: str | None) -> int:
    """Return the user id of the request's bearer token (verified, unexpired).

    Raises:
        UnauthorizedError: no token, or a bad or expired one.
    """
    if not token:
        raise UnauthorizedError("Not authenticated: send Authorization: Bearer <token>.")
    verified_tokens: VerifiedTokens = request.app.state.verified_tokens
    return verified_tokens.user_id(token)


def accept_user(request: Request, user: User | None) -> User:
    """Return `user` as the request's current user if it exists and is active.

    Names the user in the access log line and as the audit trail's actor.

    Raises:
        UnauthorizedError: the token's user is gone or deactivated.
    """
    if user is None or not user.is_active:
        raise UnauthorizedError
    request.state.user_id = user.id
    set_user(user.id)  # the audit trail's actor from here on
    return user


async def require_bearer_token(request: Request, token: BearerToken) -> None:
    """Refuse a request without a valid, unexpired bearer token (401), before anything else.

    The dependency of every protected route. It reads no row: the route's own `CurrentUser`,
    `AdminUser` or `Visible<Entity>` reads the user (and refuses a deactivated one), so a
    route that loads a record reads its user in the same statement. `check_routes_load_user`
    refuses, at start-up, a protected route that declares none of them.

    Raises:
        UnauthorizedError: no token, or a bad or expired one.
    """
    authenticated_user_id(request, token)


def loads_current_user(dependency: DependencyT) -> DependencyT:
    """Mark `dependency` as one that reads and checks the current user (see `accept_user`)."""
    _USER_LOADERS.add(dependency)
    return dependency


def check_routes_load_user(router: APIRouter) -> None:
    """Refuse to start if a route of `router` would serve a deactivated user.

    Raises:
        RuntimeError: a route declares no `CurrentUser`, `AdminUser` or `Visible<Entity>`.
    """
    for route in router.routes:
        if isinstance(route, APIRoute) and not _reads_user(route.dependant):
            raise RuntimeError(
                f"{route.name} ({route.path}) needs a bearer token but never reads its user, "
                "so a deactivated user would pass: declare `user: CurrentUser` (or AdminUser, "
                "or the record as Visible<Entity>)."
            )


def _reads_user(dependant: Dependant) -> bool:
    if dependant.call in _USER_LOADERS:
        return True
    return any(_reads_user(sub) for sub in dependant.dependencies)


@loads_current_user
async def get_current_user(request: Request, session: SessionDep, token: BearerToken) -> User:
    """Return the active user the bearer token belongs to.

    Read on every request (a deactivated user is refused at once); a record loaded with
    `access.visible_record` earlier in the same request brought the user along, so this
    finds it in the session without a second query.

    Raises:
        UnauthorizedError: no token, a bad or expired one, or the user is gone or inactive.
    """
    user = await load_user(session, authenticated_user_id(request, token))
    return accept_user(request, user)


async def load_user(session: AsyncSession, user_id: int) -> User | None:
    """Return the user with `user_id` (None if gone), read in this session at most once."""
    user = session.identity_map.get(identity_key(User, user_id))  # read with a record already
    if user is None:
        user = (await session.execute(_USER_BY_ID, {"user_id": user_id})).scalar_one_or_none()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_admin(user: CurrentUser) -> User:
    """Return the current user if they are an admin.

    Raises:
        ForbiddenError: the user is a member.
    """
    if not user.is_admin:
        raise ForbiddenError("This action needs the admin role.")
    return user


AdminUser = Annotated[User, Depends(get_current_admin)]


async def refuse_unknown_query_parameters(request: Request) -> None:
    """Refuse a query parameter the operation does not declare (a misspelt filter).

    FastAPI ignores unknown query parameters, so `?stauts=won` would list every lead; like
    an unknown body field, it is a 422 naming the parameter instead.

    Raises:
        InvalidFieldError: a query parameter the operation does not take.
    """
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _query_names(dependant)
    for name in request.query_params:
        if name not in allowed:
            raise InvalidFieldError(["query", name], "is not a parameter of this operation")


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters an operation declares, its dependencies' included (cached)."""
    names = _QUERY_NAMES.get(id(dependant))
    if names is None:
        found: set[str] = set()
        stack, seen = [dependant], set()
        while stack:
            current = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            found.update(field.alias for field in current.query_params)
            stack.extend(current.dependencies)
        names = _QUERY_NAMES[id(dependant)] = frozenset(found)
    return names
