"""Schemathesis fuzzes the served app from its own OpenAPI, with every check and two members.

The app runs with uvicorn on a free port (real HTTP, as `make run` serves it), on PostgreSQL
(where NUL bytes and 64-bit overflows break) and on SQLite; the members and an admin are made
through the API with the suite's factories. `tests/api/fuzzing.py` holds the harness. The
first test proves the harness fails on a broken handler, so the fuzz test cannot pass by
checking nothing.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Response
from pydantic import BaseModel
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send
from twilio.request_validator import RequestValidator

from backend.app.core.config import Settings
from backend.app.core.deps import get_current_user
from backend.app.core.errors import NotFoundError, UnauthorizedError, error_responses
from backend.app.main import API_PREFIX, create_app
from tests.api.fuzzing import FuzzReport, Identity, fuzz
from tests.conftest import clean_database, make_settings, running_app
from tests.factories import PASSWORD, login, make_member, unique_email
from tests.fakes.serving import serve_in_thread

pytestmark = pytest.mark.slow  # about 30 s a database: `make test` runs it, `make check` does not

BROKEN = f"{API_PREFIX}/broken"
TWILIO_WEBHOOKS = f"{API_PREFIX}/webhooks/twilio/"
FORM = "application/x-www-form-urlencoded"


@asynccontextmanager
async def fuzz_target(
    database_url: str, extend: Callable[[FastAPI], None] | None = None
) -> AsyncIterator[tuple[str, list[Identity], Identity]]:
    """Serve the app on `database_url`; yield its URL, two members and an admin.

    The database is emptied afterwards, as the `client` fixture does.
    """
    admin_email = unique_email("admin")
    settings = make_settings(
        database_url, first_admin_email=admin_email, first_admin_password=PASSWORD
    )
    app = create_app(settings)
    if extend is not None:
        extend(app)
    try:
        with serve_in_thread(TwilioSigns(app), "API", lifespan="on", timeout=30) as base_url:
            async with httpx.AsyncClient(base_url=base_url) as http:
                members = [
                    Identity(name, (await make_member(http)).headers) for name in ("alice", "bob")
                ]
                admin_token = await login(http, admin_email)
            admin = Identity("admin", {"Authorization": f"Bearer {admin_token}"})
            yield base_url, members, admin
    finally:
        async with running_app(make_settings(database_url)) as cleaner:
            await clean_database(cleaner)


class TwilioSigns:
    """Sign each form posted to the Twilio webhooks as Twilio would, then pass it to the app.

    This plays Twilio's part at the edge of the network, so fuzzed forms reach the handlers
    instead of stopping at 403; the app's own signature check still runs on every request.
    A body that is not a form goes through unsigned.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        settings: Settings = app.state.settings
        token = settings.twilio_auth_token
        assert token is not None
        self.validator = RequestValidator(token.get_secret_value())
        self.public_base_url = settings.public_base_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(TWILIO_WEBHOOKS):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        request = Request(scope, replay)
        if request.headers.get("content-type", "").startswith(FORM):
            url = self.public_base_url + request.url.path
            url += f"?{request.url.query}" if request.url.query else ""
            signature = self.validator.compute_signature(url, await request.form())
            headers = [(k, v) for k, v in scope["headers"] if k != b"x-twilio-signature"]
            scope = {**scope, "headers": [*headers, (b"x-twilio-signature", signature.encode())]}
        await self.app(scope, replay, send)


class Thing(BaseModel):
    """What the broken routes answer."""

    id: int
    name: str


class ThingCreate(BaseModel):
    """A thing to store."""

    name: str


def add_broken_routes(app: FastAPI) -> None:
    """Add defective operations: a 500, an undocumented 418, and things readable by anyone."""
    router = APIRouter(
        prefix=BROKEN,
        dependencies=[Depends(get_current_user)],
        responses=error_responses(500, UnauthorizedError),
    )
    things: dict[int, Thing] = {}

    @router.get("/crash", response_model=Thing)
    async def crash() -> Thing:
        raise RuntimeError("a defect")

    @router.get("/teapot", response_model=Thing)
    async def teapot(response: Response) -> Thing:
        response.status_code = 418
        return Thing(id=1, name="tea")

    @router.post("/things", response_model=Thing, status_code=201, responses=error_responses(422))
    async def create_thing(body: ThingCreate, response: Response) -> Thing:
        thing = things[len(things) + 1] = Thing(id=len(things) + 1, name=body.name)
        response.headers["Location"] = f"{BROKEN}/things/{thing.id}"
        return thing

    @router.get("/things/{thing_id}", response_model=Thing, responses=error_responses(404, 422))
    async def read_thing(thing_id: int) -> Thing:
        if thing_id not in things:
            raise NotFoundError(f"Thing {thing_id} was not found.")
        return things[thing_id]  # to whoever asks: no owner check

    app.include_router(router)


async def test_the_harness_fails_on_a_500_an_undocumented_status_and_a_leak(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with fuzz_target(sqlite_url, extend=add_broken_routes) as (base_url, members, _):
        report = await asyncio.to_thread(
            fuzz,
            base_url,
            identities=members,
            workdir=tmp_path,
            only_paths=f"^{BROKEN}/",
            max_examples=5,
        )

    found = {(failure.check, failure.operation) for failure in report.failures}
    assert found == {
        ("not_a_server_error", f"GET {BROKEN}/crash"),
        ("status_code_conformance", f"GET {BROKEN}/teapot"),
        ("positive_data_acceptance", f"GET {BROKEN}/teapot"),
        ("foreign_ids_answer_404", f"GET {BROKEN}/things/{{thing_id}}"),
        ("object_level_authorization", f"GET {BROKEN}/things/{{thing_id}}"),
    }, report.describe()
    assert report.errors == []


async def test_twilio_signs_gets_a_form_past_the_signature_check(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    form = {"MessageSid": "SM" + "0" * 32, "From": "+14155550100", "To": "+14155550199"}
    transport = httpx.ASGITransport(app=TwilioSigns(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        signed = await http.post(f"{TWILIO_WEBHOOKS}inbound", data={**form, "Body": "hi"})
    unsigned = await client.post(f"{TWILIO_WEBHOOKS}inbound", data={**form, "Body": "hi"})

    assert (signed.status_code, unsigned.status_code) == (200, 403)


def _assert_clean(*reports: FuzzReport) -> None:
    for report in reports:
        assert not report.stopped_early, "a fuzz run hit its time cap; lower max_examples"
    assert all(not report.failures and not report.errors for report in reports), "\n\n".join(
        report.describe() for report in reports
    )


async def test_fuzzing_finds_nothing(database_url: str, tmp_path: Path) -> None:
    async with fuzz_target(database_url) as (base_url, members, admin):
        as_members = await asyncio.to_thread(fuzz, base_url, identities=members, workdir=tmp_path)
        as_admin = await asyncio.to_thread(
            fuzz,
            base_url,
            identities=[admin],
            workdir=tmp_path,
            peers=False,
            only_paths=f"^{API_PREFIX}/users",
        )

    _assert_clean(as_members, as_admin)
