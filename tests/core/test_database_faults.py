"""Database outages: down, stalled and back, through a TCP proxy between the app and PostgreSQL.

The app under test reaches PostgreSQL only through `TcpProxy` (tests/fakes/tcp_proxy.py),
which the tests kill (connections reset, new ones refused) and stall (sockets open, no byte
moves) and then restore, without restarting the app. Timeouts are set to 1 s here, so a
stall must end within a few seconds; every wait of the tests themselves is bounded too,
so a regression fails instead of hanging the suite.

The elapsed-time limits are correctness bounds (an answer instead of a hang), far above what
the settings allow, not speed targets.
"""

import asyncio
import inspect
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from backend.app.cli import migrate
from backend.app.core.database import create_engine, is_database_unavailable
from backend.app.main import create_app
from backend.app.models import Message
from backend.app.worker import SmsWorker, Worker
from tests.assertions import assert_error
from tests.conftest import (
    POSTGRES_ADMIN_URL,
    clean_database,
    client_for,
    make_settings,
    run_in_thread,
    running_app,
)
from tests.factories import AuthedUser, make_member, queue_text, unique_email
from tests.fakes.tcp_proxy import TcpProxy

FAST_TIMEOUTS = {
    "database_connect_timeout_seconds": 1.0,
    "database_pool_timeout_seconds": 1.0,
    "database_statement_timeout_seconds": 1.0,
}
ANSWER_BOUND_SECONDS = 10.0  # the settings allow about 3 s; a hang is what this catches
TEST_WAIT_SECONDS = 20.0  # the longest any single step of a test may wait
PHONE = "+14155550100"


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A proxy to the test PostgreSQL server, forwarding until told otherwise."""
    server = make_url(POSTGRES_ADMIN_URL)
    with TcpProxy(server.host or "127.0.0.1", server.port or 5432) as tcp_proxy:
        yield tcp_proxy


@pytest.fixture
async def proxied_app(postgresql_url: str, proxy: TcpProxy) -> AsyncIterator[FastAPI]:
    """The app on the session's PostgreSQL database, reached through `proxy`; pool of 2."""
    url = make_url(postgresql_url).set(host="127.0.0.1", port=proxy.port)
    settings = make_settings(
        url.render_as_string(False),
        database_pool_size=2,
        database_max_overflow=0,
        worker_poll_seconds=0.1,
        **FAST_TIMEOUTS,
    )
    async with running_app(settings) as app:
        try:
            yield app
        finally:
            proxy.restore()
            await clean_database(app)


@pytest.fixture
async def http(proxied_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(proxied_app) as client:
        yield client


async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    """Await a request (at most TEST_WAIT_SECONDS); return it and the seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(TEST_WAIT_SECONDS):
        response = await call
    return response, time.monotonic() - started


def assert_database_unavailable(response: httpx.Response) -> None:
    assert_error(response, 503, "database_unavailable")
    assert int(response.headers["retry-after"]) >= 1


async def wait_until(condition: Callable[[], object], what: str) -> None:
    """Poll `condition` (sync or async) every 0.1 s until it holds; fail after a while."""
    deadline = time.monotonic() + TEST_WAIT_SECONDS
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)


async def read_me(http: httpx.AsyncClient, user: AuthedUser) -> httpx.Response:
    """A read that needs the database: the bearer token's user is looked up."""
    return await http.get("/api/v1/users/me", headers=user.headers)


def register(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    """A write: a new member registers."""
    body = {"email": unique_email("writer"), "password": "correct horse battery"}
    return http.post("/api/v1/auth/register", json=body)


async def test_database_down_answers_503_then_recovers_by_itself(
    http: httpx.AsyncClient, proxy: TcpProxy
) -> None:
    user = await make_member(http)
    assert (await read_me(http, user)).status_code == 200

    proxy.kill()
    # The first request finds its pooled connection dead, the next ones are refused.
    for _ in range(3):
        response, _seconds = await timed(read_me(http, user))
        assert_database_unavailable(response)
    write, _seconds = await timed(register(http))
    assert_database_unavailable(write)
    login, _seconds = await timed(
        http.post("/api/v1/auth/token", data={"username": user.email, "password": "x" * 10})
    )
    assert_database_unavailable(login)
    ready, _seconds = await timed(http.get("/health/ready"))
    assert ready.status_code == 503

    proxy.restore()
    back, _seconds = await timed(read_me(http, user))
    assert back.status_code == 200, back.text
    assert (await http.get("/health/ready")).status_code == 200


async def test_stalled_database_answers_503_within_the_bound_then_recovers(
    http: httpx.AsyncClient, proxy: TcpProxy
) -> None:
    user = await make_member(http)
    assert (await read_me(http, user)).status_code == 200

    proxy.stall()
    # First a pooled connection that stops answering, then new connections that never
    # finish their handshake, then more requests at once than the pool holds.
    for _ in range(2):
        response, seconds = await timed(read_me(http, user))
        assert_database_unavailable(response)
        assert seconds < ANSWER_BOUND_SECONDS
    started = time.monotonic()
    async with asyncio.timeout(TEST_WAIT_SECONDS):
        burst = await asyncio.gather(*(read_me(http, user) for _ in range(6)))
    for response in burst:
        assert_database_unavailable(response)
    assert time.monotonic() - started < ANSWER_BOUND_SECONDS
    ready, seconds = await timed(http.get("/health/ready"))
    assert ready.status_code == 503
    assert seconds < ANSWER_BOUND_SECONDS

    proxy.restore()
    back, _seconds = await timed(read_me(http, user))
    assert back.status_code == 200, back.text


async def test_statement_timeout_is_set_on_the_server(postgresql_url: str) -> None:
    """A slow statement on a healthy connection is canceled by PostgreSQL itself."""
    engine = create_engine(make_settings(postgresql_url, **FAST_TIMEOUTS))
    try:
        started = time.monotonic()
        async with asyncio.timeout(TEST_WAIT_SECONDS), engine.connect() as connection:
            with pytest.raises(DBAPIError) as caught:
                await connection.execute(text("SELECT pg_sleep(5)"))
        assert caught.value.orig.sqlstate == "57014"  # query_canceled, by statement_timeout
        assert is_database_unavailable(caught.value)
        assert time.monotonic() - started < 4
    finally:
        await engine.dispose()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_worker_survives_an_outage_and_a_stall_then_sends(
    proxied_app: FastAPI, http: httpx.AsyncClient, proxy: TcpProxy
) -> None:
    owner = await make_member(http)
    sms = SmsWorker(
        settings=proxied_app.state.settings,
        session_factory=proxied_app.state.session_factory,
        sender=proxied_app.state.sms_sender,
    )
    worker = Worker(
        settings=proxied_app.state.settings,
        session_factory=proxied_app.state.session_factory,
        deliveries=[sms],
    )
    records = _Records()
    logging.getLogger("app.worker").addHandler(records)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    def rounds_failed() -> int:
        return records.messages.count("worker round failed")

    try:
        await asyncio.sleep(0.5)  # a few idle rounds: its pooled connection is in use
        proxy.stall()  # that connection stops answering, then new ones never open
        await wait_until(lambda: rounds_failed() >= 2, "two rounds end (stalled), not hang")
        proxy.kill()
        failed_while_stalled = rounds_failed()
        await wait_until(lambda: rounds_failed() > failed_while_stalled, "a round fails (down)")
        assert not task.done()

        proxy.restore()
        queued = await queue_text(proxied_app, owner, PHONE, "Hi")

        async def sent() -> bool:
            async with proxied_app.state.session_factory() as session:
                row = await session.get(Message, queued.id)
                return row is not None and row.status == "sent"

        await wait_until(sent, "the worker sends the queued text")
        assert not task.done()
    finally:
        proxy.restore()
        stop.set()
        async with asyncio.timeout(TEST_WAIT_SECONDS):
            await task
        logging.getLogger("app.worker").removeHandler(records)


async def test_sqlite_lock_held_past_the_busy_timeout_answers_503(tmp_path: Path) -> None:
    """SQLite has one writer: a write that waits out the busy timeout is 503, then works."""
    path = tmp_path / "app.db"
    settings = make_settings(f"sqlite+aiosqlite:///{path}", **FAST_TIMEOUTS)
    run_in_thread(migrate, settings)
    async with running_app(settings) as app, client_for(app) as client:
        await make_member(client)
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
            blocked, seconds = await timed(register(client))
            assert_database_unavailable(blocked)
            assert seconds < ANSWER_BOUND_SECONDS
        finally:
            blocker.rollback()
            blocker.close()
        created = await register(client)
        assert created.status_code == 201, created.text


def test_every_api_operation_documents_database_unavailable(tmp_path: Path) -> None:
    spec = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")).openapi()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
        if "`database_unavailable`"
        not in operation["responses"].get("503", {}).get("description", "")
    ]
    assert missing == []
