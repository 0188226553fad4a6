"""Build the FastAPI app: settings, lifespan resources, middleware, errors and routers.

`create_app(settings)` is the factory (tests pass their own settings); `app` is the module
level instance uvicorn serves (`backend.app.main:app`). Every router is registered here.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from backend.app.core.config import BillingProvider, Settings, get_settings
from backend.app.core.database import (
    create_engine,
    create_read_session_factory,
    create_session_factory,
    unit_of_work,
)
from backend.app.core.deps import (
    check_routes_load_user,
    refuse_unknown_query_parameters,
    require_bearer_token,
)
from backend.app.core.error_handlers import document_shared_errors, register_error_handlers
from backend.app.core.errors import (
    EmailTakenError,
    UnauthorizedError,
    error_responses,
)
from backend.app.core.logging import configure_logging
from backend.app.core.metrics import RequestMetrics
from backend.app.core.middleware import (
    JsonCORSMiddleware,
    RequestContextMiddleware,
    UnhandledErrorMiddleware,
)
from backend.app.core.observability import start_observability
from backend.app.core.rate_limit import create_failure_counter
from backend.app.core.security import PasswordHasher, VerifiedTokens
from backend.app.core.tracing import telemetry_config
from backend.app.crud import users as crud_users
from backend.app.integrations.fhir import create_fhir_client
from backend.app.integrations.stripe import create_checkout_provider
from backend.app.integrations.twilio import create_twilio_client
from backend.app.routers import (
    audit_events,
    auth,
    dev_checkout,
    docs,
    health,
    lead_ehr,
    leads,
    messages,
    metrics,
    payments,
    users,
    webhooks_stripe,
    webhooks_twilio,
)
from backend.app.worker import BackgroundWorker, create_worker

logger = logging.getLogger("app")

API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).parent / "static"
API_DESCRIPTION = """
Authenticate with `POST /api/v1/auth/token` (OAuth2 password flow; the **Authorize** button
does it for you), then send `Authorization: Bearer <token>`. Every error has the body
`{"code", "message", "details", "request_id"}`.

**Idempotent creates:** send `Idempotency-Key` (1-255 characters, per user, kept 24 hours) to
retry safely: the same request again replays the first answer (`Idempotent-Replayed: true`);
the key with another body is 409 `idempotency_key_reused`; while the first still runs, 409
`idempotency_key_in_use`.
"""
# example:lead start
API_DESCRIPTION = f"""
A lead tracker: log prospects, update their status, send them SMS follow-ups, bill them,
and make the won ones patients in the clinic's EHR.
{API_DESCRIPTION}
**Billing.** `POST /api/v1/leads/{{id}}/payments` answers a `pending` payment with the
`checkout_url` the lead pays at; the payment becomes `paid`, `failed` or `expired` (final)
when the payment provider reports back, and a lead whose first payment is paid moves to `won`.

**EHR.** `POST /api/v1/leads/{{id}}/ehr-patient` makes a `won` lead a FHIR Patient in the EHR
and links it (201; 200 once linked, never a second patient); `GET` the same path reads the
patient from the EHR. The EHR failing or down is 502/503 and stores nothing: retry.
"""
# example:lead end


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the engine, hasher and rate limiter at start-up; release them at shutdown."""
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    app.state.engine = engine
    observability = start_observability(settings, engine, component="api")
    app.state.metrics_exposition = observability.exposition
    app.state.session_factory = create_session_factory(engine)
    app.state.read_session_factory = create_read_session_factory(engine)
    app.state.password_hasher = PasswordHasher()
    app.state.login_failures = create_failure_counter(
        settings.redis_url,
        limit=settings.login_max_failures,
        window_seconds=settings.login_window_seconds,
    )
    app.state.sms_sender = create_twilio_client(settings)
    app.state.checkout_provider = create_checkout_provider(settings)
    app.state.ehr_client = create_fhir_client(settings)
    worker: BackgroundWorker | None = None
    try:
        await _create_first_admin(app)
        if settings.run_worker_in_app:  # the SQLite default: `make run` sends texts too
            worker = BackgroundWorker(
                create_worker(settings, app.state.session_factory),
                grace_seconds=2 * settings.sms_send_budget_seconds,
            )
        yield
    finally:
        if worker is not None:
            await worker.stop()
        await app.state.sms_sender.aclose()
        await app.state.checkout_provider.aclose()
        await app.state.ehr_client.aclose()
        await app.state.login_failures.close()
        app.state.password_hasher.close()
        await observability.stop()
        await engine.dispose()


async def _create_first_admin(app: FastAPI) -> None:
    """Create the admin named by FIRST_ADMIN_EMAIL/FIRST_ADMIN_PASSWORD, if both are set."""
    settings: Settings = app.state.settings
    if not (settings.first_admin_email and settings.first_admin_password):
        return
    password = settings.first_admin_password.get_secret_value()
    try:
        async with unit_of_work(app.state.session_factory) as session:
            created = await crud_users.ensure_admin(
                session,
                email=settings.first_admin_email,
                hashed_password=await app.state.password_hasher.hash(password),
            )
    except EmailTakenError:  # another worker process created it at the same moment
        created = False
    if created:
        logger.info("first admin created (FIRST_ADMIN_EMAIL)")


def operation_id(route: APIRoute) -> str:
    """Name each operation after its handler, so generated clients get `createLead` etc."""
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (default: read from the environment)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Lead Tracker API",
        version="1.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        debug=settings.debug,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        swagger_ui_oauth2_redirect_url=None,
        telemetry=telemetry_config(settings),  # request spans when tracing, else off
    )
    app.state.settings = settings
    app.state.verified_tokens = VerifiedTokens(settings)
    register_error_handlers(app)
    document_shared_errors(app, api_prefix=API_PREFIX)  # body errors, database_unavailable
    if settings.cors_origins:  # inside the request layer, so its answers get the headers
        app.add_middleware(UnhandledErrorMiddleware)  # its 500 still gets CORS headers
        app.add_middleware(
            JsonCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Location", "Retry-After", "Idempotent-Replayed"],
        )
    # Outermost: every response gets an id and the security headers, and is counted.
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        hsts_max_age=settings.hsts_max_age_seconds if settings.is_production else None,
        metrics=RequestMetrics() if settings.metrics_served else None,
    )

    app.include_router(health.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(build_api_router())
    if settings.billing_provider is BillingProvider.FAKE:  # never in production
        app.include_router(dev_checkout.router)
    if settings.metrics_served:  # production: only with METRICS_TOKEN
        app.include_router(metrics.router)
    return app


def build_api_router() -> APIRouter:
    """Return `/api/v1`: public routes first, then routes that need a bearer token.

    Every operation here may answer 500, and 503 `database_unavailable` (documented for all
    of them by `document_shared_errors`).
    """
    api = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(refuse_unknown_query_parameters)],
        responses=error_responses(500),
    )
    api.include_router(auth.router)
    api.include_router(webhooks_twilio.router)  # authenticated by X-Twilio-Signature
    api.include_router(webhooks_stripe.router)  # authenticated by Stripe-Signature

    # Routes that need a bearer token (each router at this level: one routing level less
    # per request than a router of routers).
    include_protected(api, users.router)
    include_protected(api, leads.router)
    include_protected(api, messages.router)
    include_protected(api, payments.router)
    include_protected(api, lead_ehr.router)
    include_protected(api, audit_events.router)
    return api


def include_protected(api: APIRouter, router: APIRouter) -> None:
    """Include `router` in `api` behind a bearer token; each route must read its user.

    Raises:
        RuntimeError: a route never reads its user (`deps.check_routes_load_user`).
    """
    check_routes_load_user(router)  # each route reads its user: deactivation applies at once
    api.include_router(
        router,
        dependencies=[Depends(require_bearer_token)],
        responses=error_responses(UnauthorizedError),
    )


app = create_app()
