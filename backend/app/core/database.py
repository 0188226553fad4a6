"""Database engine, session factory and the per-request unit of work.

The engine is created in the app's lifespan (see `main.py`) and disposed at shutdown. Each
request gets one `AsyncSession`; it is committed once after the handler succeeds and rolled
back if anything raises, so a failed request never leaves half its writes behind.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from backend.app.core.config import Settings
from backend.app.core.db_errors import translate_integrity_error
from backend.app.models.base import Base


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the async engine for `settings.database_url`.

    SQLite gets its folder created, foreign keys enforced, WAL and a busy timeout so the API
    and the background worker can share one file.
    """
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_recycle=1800,
        )
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: object) -> None:
    # SQLite's own lower() folds ASCII only; case-insensitive search (ILIKE is rendered as
    # lower(x) LIKE lower(y)) must match "Émile" for "émile" as PostgreSQL does.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory; objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session; commit it when the block succeeds, roll it back on any error.

    A constraint the database enforces (unique, foreign key) that refuses the work becomes
    our own error (`core/db_errors.py`), e.g. 404 or 409, the same answer the check in
    Python would have given had no concurrent request overtaken it.

    Raises:
        AppError: a constraint violation, translated.
    """
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            raise translate_integrity_error(exc, Base.metadata) from exc
        except Exception:
            await session.rollback()
            raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session, one unit of work: committed after the handler.

    Use it with `Depends(get_session, scope="function")` (see `deps.SessionDep`) so the
    commit happens before the response is sent: a client never sees a success that was not
    stored.
    """
    async with unit_of_work(request.app.state.session_factory) as session:
        yield session
