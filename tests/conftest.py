"""Shared fixtures: real databases, the app per backend, an HTTP client, clean tables.

PostgreSQL: a database of our own (`test_<random>`) is created on the server named by
TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432) and dropped at the end. If the server
is unreachable, the PostgreSQL half is skipped with a loud notice, or fails when CI=true.
SQLite: a file in a temporary folder. Both are migrated with Alembic, never `create_all`.

TEST_DATABASES (`sqlite`, `postgresql` or `sqlite,postgresql`, the default) chooses which
backends the database-parametrised tests run on; a test that needs PostgreSQL itself is
skipped when it is left out (`make check` runs SQLite only). Under pytest-xdist every worker
has its own SQLite file and its own PostgreSQL database, so workers never share rows.
Tests marked `slow` (browser, subprocesses, fuzzing, benchmarks, the generator's self-test)
are left out of `make check`; `make test` runs them.
"""

import os
import uuid
import warnings
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.app.cli import migrate
from backend.app.core.config import Settings
from backend.app.core.rate_limit import MemoryFailureCounter
from backend.app.core.security import PasswordHasher
from backend.app.main import create_app
from backend.app.models import Base

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
KNOWN_BACKENDS = ("sqlite", "postgresql")
TEST_TWILIO_AUTH_TOKEN = "test-twilio-auth-token-0123456789"
SLOW_FOLDERS = ("tests/bench/",)  # whole folders marked `slow` here, not in each module


def chosen_backends(value: str) -> list[str]:
    """Parse TEST_DATABASES: a comma-separated subset of `sqlite` and `postgresql`."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(KNOWN_BACKENDS))
    if unknown or not names:
        raise pytest.UsageError(
            f"TEST_DATABASES={value!r}: name one or both of {', '.join(KNOWN_BACKENDS)}"
        )
    return [name for name in KNOWN_BACKENDS if name in names]


BACKENDS = chosen_backends(os.environ.get("TEST_DATABASES", "sqlite,postgresql"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of the folders in SLOW_FOLDERS `slow`."""
    root = Path(__file__).resolve().parents[1]
    for item in items:
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if where.startswith(SLOW_FOLDERS):
            item.add_marker(pytest.mark.slow)


def run_in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking code that starts its own event loop (Alembic's env) outside ours."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test app: test mode, the given database, anything overridden."""
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "log_level": "WARNING",
        "redis_url": None,
        "first_admin_email": None,
        "first_admin_password": None,
        "worker_in_app": False,  # tests that need the SMS worker start it themselves
        "twilio_auth_token": TEST_TWILIO_AUTH_TOKEN,  # signs webhooks in tests
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def _postgres_reachable() -> str | None:
    dsn = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql").render_as_string(False)
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def _admin_execute(sql: str) -> None:
    dsn = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql").render_as_string(False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """Create an empty PostgreSQL database of our own; drop it afterwards.

    Skips when TEST_DATABASES leaves PostgreSQL out; skips (or fails under CI=true) when
    the server is unreachable.
    """
    if "postgresql" not in BACKENDS:
        pytest.skip(f"TEST_DATABASES={','.join(BACKENDS)} leaves PostgreSQL out")
    problem = await _postgres_reachable()
    if problem:
        message = f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable ({problem})"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it.")
        warnings.warn(f"SKIPPING the PostgreSQL half of the suite: {message}", stacklevel=1)
        pytest.skip(message)
    name = f"test_{uuid.uuid4().hex[:12]}"
    await _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def postgresql_url() -> AsyncIterator[str]:
    """A migrated PostgreSQL database for the whole session."""
    async with fresh_postgres_database() as url:
        run_in_thread(migrate, make_settings(url))
        yield url


@pytest.fixture(params=BACKENDS)
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty, unmigrated database of each backend in turn, just for this test.

    SQLite's file sits in a `data/` folder that does not exist yet, as on a fresh checkout.
    """
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'app.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file for the whole session."""
    path: Path = tmp_path_factory.mktemp("sqlite") / "test.db"
    url = f"sqlite+aiosqlite:///{path}"
    run_in_thread(migrate, make_settings(url))
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """The migrated database of each backend in turn (tests run once per backend)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """Create an app for `settings` and run its lifespan around the block."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, client_ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """Return an HTTP client that talks to `app` in-process over ASGI."""
    transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def cheap_password_hashing(app: FastAPI) -> None:
    """Give a running app argon2id's smallest parameters (1 MiB, 1 pass) instead of OWASP's.

    The same hasher class, about 50 times cheaper: registering and logging in cost most of the
    suite's CPU time otherwise. `tests/core/test_security.py` covers the hasher itself, and apps
    started by other fixtures (the e2e servers) keep the real parameters.
    """
    app.state.password_hasher.close()
    app.state.password_hasher = PasswordHasher(memory_kib=1024, time_cost=1)


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """The app of the current backend, started once per session (cheap password hashing)."""
    async with running_app(make_settings(database_url)) as application:
        cheap_password_hashing(application)
        yield application


async def clean_database(app: FastAPI) -> None:
    """Delete every row of every table, children first.

    DELETE, not TRUNCATE, on PostgreSQL too: truncating every table makes new files for each
    and took about 230 ms a test against 9 ms for deleting a test's few rows. Ids are not
    restarted on PostgreSQL (no test relies on an id's value). The audit trail's trigger
    refuses a DELETE unless the transaction says it prunes, as the retention prune does.
    """
    async with app.state.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL app.audit_prune = 'on'"))
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the current backend's app; tables and login counters start empty."""
    settings: Settings = app.state.settings
    app.state.login_failures = MemoryFailureCounter(
        limit=settings.login_max_failures, window_seconds=settings.login_window_seconds
    )
    async with client_for(app) as http:
        yield http
    await clean_database(app)


@pytest.fixture
def backend_name(database_url: str) -> str:
    """`sqlite` or `postgresql`, for the rare test whose expectation differs."""
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
