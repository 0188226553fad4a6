"""The benchmark's second yardstick: our own data layer with no FastAPI around it.

Bare Starlette routes that do what our lead routes do, by calling the very code our app
calls: the verified-token cache, the user (`deps.load_user`) or the user and the lead in one
statement (`access.load_user_and_record`), the `crud.leads` functions, the pydantic schemas,
a read-only session for GET and one unit of work committed at the end otherwise. What is
missing is FastAPI (routing, dependency injection, validation of the path and query) and
our middleware.

So it answers one question: how fast can any app built on this data layer (SQLAlchemy 2
ORM over asyncpg, our models and schemas) be? Its ratio to the bare asyncpg baseline is
the ceiling of our app's ratio; our app's ratio to it is what the HTTP layer costs.

Served by `tests/bench/run.py` as `uvicorn tests.bench.data_layer_app:app` with the app's
`DATABASE_URL` and `SECRET_KEY`.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.app.core.access import load_user_and_record, user_and_visible_record
from backend.app.core.config import Settings, get_settings
from backend.app.core.database import (
    create_engine,
    create_read_session_factory,
    create_session_factory,
)
from backend.app.core.deps import load_user
from backend.app.core.errors import AppError, NotFoundError, UnauthorizedError, status_for
from backend.app.core.security import VerifiedTokens
from backend.app.crud import leads as crud_leads
from backend.app.crud.leads import LeadFilters
from backend.app.models.lead import Lead
from backend.app.models.user import User
from backend.app.schemas.common import PageParams
from backend.app.schemas.lead import LeadCreate, LeadPage, LeadRead, LeadUpdate

Handler = Callable[[Request, AsyncSession, int], Awaitable[Response]]
VISIBLE_LEAD = user_and_visible_record(Lead)


class _State:
    """What the lifespan creates: the settings, token cache and session factories."""

    settings: Settings
    tokens: VerifiedTokens
    session_factory: async_sessionmaker[AsyncSession]
    read_session_factory: async_sessionmaker[AsyncSession]


state = _State()


def _user_id(request: Request) -> int:
    header = request.headers.get("authorization", "")
    return state.tokens.user_id(header.removeprefix("Bearer "))


def _active(user: User | None) -> User:
    if user is None or not user.is_active:
        raise UnauthorizedError
    return user


async def _user(session: AsyncSession, user_id: int) -> User:
    return _active(await load_user(session, user_id))


async def _visible_lead(session: AsyncSession, user_id: int, request: Request) -> Lead:
    lead_id = request.path_params["lead_id"]
    user, lead = await load_user_and_record(session, VISIBLE_LEAD, user_id, lead_id)
    _active(user)
    if lead is None:
        raise NotFoundError
    return lead


def with_session(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Run `handler` for the token's user: GET read-only, else one committed unit of work."""

    async def endpoint(request: Request) -> Response:
        try:
            user_id = _user_id(request)
            if request.method == "GET":
                async with state.read_session_factory() as session:
                    return await handler(request, session, user_id)
            async with state.session_factory() as session:
                response = await handler(request, session, user_id)
                await session.commit()
                return response
        except AppError as exc:
            return JSONResponse({"code": exc.code}, status_code=status_for(type(exc)))

    return endpoint


def _json(model: LeadRead | LeadPage, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code, media_type="application/json")


async def create_lead(request: Request, session: AsyncSession, user_id: int) -> Response:
    user = await _user(session, user_id)
    body = LeadCreate.model_validate_json(await request.body())
    lead = await crud_leads.create_lead(
        session, data=body, owner=user, phone_region=state.settings.default_phone_region
    )
    return _json(LeadRead.model_validate(lead), 201)


async def read_lead(request: Request, session: AsyncSession, user_id: int) -> Response:
    return _json(LeadRead.model_validate(await _visible_lead(session, user_id, request)))


async def list_leads(request: Request, session: AsyncSession, user_id: int) -> Response:
    user = await _user(session, user_id)
    page = PageParams(
        limit=int(request.query_params.get("limit", "50")),
        offset=int(request.query_params.get("offset", "0")),
    )
    return _json(await crud_leads.list_leads(session, user=user, filters=LeadFilters(), page=page))


async def update_lead(request: Request, session: AsyncSession, user_id: int) -> Response:
    lead = await _visible_lead(session, user_id, request)
    body = LeadUpdate.model_validate_json(await request.body())
    lead = await crud_leads.update_lead(
        session, lead=lead, data=body, phone_region=state.settings.default_phone_region
    )
    return _json(LeadRead.model_validate(lead))


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    state.settings = get_settings()
    engine = create_engine(state.settings)
    state.tokens = VerifiedTokens(state.settings)
    state.session_factory = create_session_factory(engine)
    state.read_session_factory = create_read_session_factory(engine)
    try:
        yield
    finally:
        await engine.dispose()


app = Starlette(
    routes=[
        Route("/api/v1/leads", with_session(create_lead), methods=["POST"]),
        Route("/api/v1/leads", with_session(list_leads), methods=["GET"]),
        Route("/api/v1/leads/{lead_id:int}", with_session(read_lead), methods=["GET"]),
        Route("/api/v1/leads/{lead_id:int}", with_session(update_lead), methods=["PATCH"]),
    ],
    lifespan=lifespan,
)
