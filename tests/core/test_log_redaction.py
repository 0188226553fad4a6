"""No log line carries a statement's parameters, a password hash, a lead's data or a text.

Each kind of database error is provoked through the app's own engine, on both databases,
and logged as the last-resort handler logs it; the JSON lines our formatter writes are then
searched for the values. The API refuses most such values before they reach the database;
these tests go around it on purpose, as a bug or a race would. One test goes the whole way:
a route that fails on the database, the middleware's log line, the formatter.
"""

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from backend.app.cli import migrate
from backend.app.core.deps import SessionDep
from backend.app.core.logging import JsonFormatter
from backend.app.integrations.twilio import ConsoleSmsSender
from backend.app.main import create_app
from backend.app.models import Lead, Message, User
from tests.conftest import client_for, make_settings, run_in_thread

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$SECRETHASHVALUEXYZ"
EMAIL = "zelda.hidden@example.com"
NAME = "Zelda Secretname"
NOTES = "private notes about Zelda"
BODY = "the secret body of a text"
PHONE = "+14155550123"
SENSITIVE = (HASH, EMAIL, NAME, NOTES, BODY)
MISSING_ID = 987654321


class JsonLines(logging.Handler):
    """Keep every record as the JSON line our formatter writes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    handler = JsonLines()
    logging.getLogger().addHandler(handler)
    yield handler.lines
    logging.getLogger().removeHandler(handler)


def user_row(**fields: Any) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "hashed_password": HASH,
        "full_name": NAME,
        "role": "member",
        "is_active": True,
        **fields,
    }


# example:lead start
def lead_row(**fields: Any) -> dict[str, Any]:
    return {
        "owner_id": MISSING_ID,
        "name": NAME,
        "notes": NOTES,
        "status": "new",
        **fields,
    }


# example:lead end


def message_row(**fields: Any) -> dict[str, Any]:
    return {
        "created_by_id": MISSING_ID,
        "direction": "outbound",
        "status": "queued",
        "body": BODY,
        "phone": PHONE,
        **fields,
    }


BOTH = ("sqlite", "postgresql")
# name: (statements, backends where the database refuses them)
CASES: dict[str, tuple[list[Executable], tuple[str, ...]]] = {
    "unique violation": ([insert(User).values(user_row())] * 2, BOTH),
    # example:lead start
    "foreign key violation (lead)": ([insert(Lead).values(lead_row())], BOTH),
    # example:lead end
    "foreign key violation (message)": ([insert(Message).values(message_row())], BOTH),
    "not null violation": ([insert(User).values(user_row(email=None))], BOTH),
    "check violation": ([insert(User).values(user_row(role="nobody"))], BOTH),
    "value too long": ([insert(User).values(user_row(full_name=NAME * 20))], ("postgresql",)),
    "NUL byte": ([insert(User).values(user_row(full_name=f"{NAME}\x00"))], ("postgresql",)),
    "argument of the wrong type": ([select(User).where(User.id == NAME)], ("postgresql",)),
}


async def execute(app: FastAPI, statements: list[Executable]) -> None:
    async with app.state.session_factory.begin() as session:
        for statement in statements:
            await session.execute(statement)


@pytest.mark.parametrize("case", CASES)
async def test_database_errors_are_logged_without_the_values(
    case: str, app: FastAPI, client: httpx.AsyncClient, backend_name: str, log_lines: list[str]
) -> None:
    statements, refused_by = CASES[case]
    if backend_name not in refused_by:
        pytest.skip(f"{backend_name} stores this")
    with pytest.raises(DBAPIError) as caught:
        await execute(app, statements)
    logging.getLogger("app.errors").error(
        "unhandled error", exc_info=caught.value, extra={"error": caught.value}
    )
    [line] = [line for line in log_lines if '"unhandled error"' in line]
    assert type(caught.value).__name__ in line
    for value in SENSITIVE:
        assert value not in line
    assert ("sqlstate=" if backend_name == "postgresql" else "SQLITE_") in line


@pytest.fixture
async def app_with_a_failing_route(database_url: str) -> AsyncIterator[FastAPI]:
    """A fresh app with one extra route that stores a user the database refuses."""
    app = create_app(make_settings(database_url))

    @app.post("/test-only/register")
    async def register(session: SessionDep) -> None:
        try:
            await session.execute(insert(User).values(user_row(email=None)))
        except DBAPIError as exc:
            raise RuntimeError("could not store the user") from exc

    async with app.router.lifespan_context(app):
        yield app


async def test_the_middleware_logs_a_failed_request_without_the_values(
    app_with_a_failing_route: FastAPI, log_lines: list[str]
) -> None:
    async with client_for(app_with_a_failing_route) as http:
        response = await http.post("/test-only/register")
    assert response.status_code == 500
    [line] = [line for line in log_lines if '"unhandled error"' in line]
    assert "RuntimeError: could not store the user" in line
    assert "IntegrityError" in line
    for value in SENSITIVE:
        assert value not in line


class Shape(BaseModel):
    count: int


async def test_validation_errors_are_logged_without_the_input(log_lines: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        Shape.model_validate({"count": NAME})
    logging.getLogger("app.errors").error("unhandled error", exc_info=caught.value)
    [line] = log_lines
    assert "count (int_parsing)" in line
    assert NAME not in line


async def test_console_sms_sender_logs_neither_number_nor_body(log_lines: list[str]) -> None:
    logging.getLogger("app.twilio").setLevel(logging.INFO)
    try:
        sent = await ConsoleSmsSender().send(to=PHONE, body=BODY, status_callback=None)
    finally:
        logging.getLogger("app.twilio").setLevel(logging.NOTSET)
    [line] = [line for line in log_lines if sent.sid in line]
    assert PHONE not in line
    assert BODY not in line


async def test_first_admin_start_up_line_has_no_email(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    password = "first-admin-password-123"
    settings = make_settings(
        url, log_level="INFO", first_admin_email=EMAIL, first_admin_password=password
    )
    run_in_thread(migrate, settings)
    root = logging.getLogger()
    level = root.level
    app = create_app(settings)  # logs at INFO from here on
    handler = JsonLines()
    root.addHandler(handler)
    try:
        async with app.router.lifespan_context(app):
            pass
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert any("first admin created" in line for line in handler.lines)
    assert not [line for line in handler.lines if EMAIL in line or password in line]
