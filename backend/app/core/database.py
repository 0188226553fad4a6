"""Database engine, session factory and the per-request unit of work.

The engine is created in the app's lifespan (see `main.py`) and disposed at shutdown. Each
request gets one `AsyncSession`; it is committed once after the handler succeeds and rolled
back if anything raises, so a failed request never leaves half its writes behind. A read-only
request (GET, HEAD) gets a read-only session instead: its statements run without a
transaction (no BEGIN and COMMIT round trips; each statement sees what is committed when it
starts, as inside a READ COMMITTED transaction), and any write through it is refused.

Every wait on the database is bounded by a setting (DATABASE_CONNECT_TIMEOUT_SECONDS,
DATABASE_POOL_TIMEOUT_SECONDS, DATABASE_STATEMENT_TIMEOUT_SECONDS), and every failure to reach
the database surfaces as a SQLAlchemy error: `is_database_unavailable` tells those apart from
bugs and bad data. The API answers them 503 `database_unavailable` (`error_handlers.py`); the
worker pauses a round. Statement parameters never appear in an error (`hide_parameters`).
"""

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import URL, event
from sqlalchemy.engine import Dialect, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from backend.app.core.audit import AuditedSession
from backend.app.core.config import Settings
from backend.app.core.db_errors import translate_integrity_error
from backend.app.models.base import Base

# The client gives up this long after the server's statement_timeout would have fired: only
# a network that stopped delivering answers gets that far.
CLIENT_TIMEOUT_GRACE_SECONDS = 1.0
# PostgreSQL errors that mean "cannot serve this now, retry later": the classes 08
# (connection) and 53 (insufficient resources, e.g. too many connections), a statement
# canceled by statement_timeout, and a server shutting down or starting up.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53"})
_UNAVAILABLE_SQLSTATES = frozenset({"57014", "57P01", "57P02", "57P03"})
# SQLite: another connection held the lock past the busy timeout (primary result codes).
_SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def create_engine(settings: Settings, *, bound_statements: bool = True) -> AsyncEngine:
    """Create the async engine for `settings.database_url`, every wait bounded.

    SQLite gets its folder created, foreign keys enforced, WAL and a busy timeout so the API
    and the background worker can share one file.

    Args:
        settings: the database URL, pool size and timeouts.
        bound_statements: False for migrations (PostgreSQL), whose statements (an index on a
            big table) may rightly run longer than DATABASE_STATEMENT_TIMEOUT_SECONDS.
    """
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = _create_sqlite_engine(url, settings)
    else:
        engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_recycle=1800,
            pool_timeout=settings.database_pool_timeout_seconds,
            hide_parameters=True,
            connect_args=_asyncpg_connect_args(settings, bound_statements=bound_statements),
        )
    event.listen(engine.sync_engine, "do_connect", _connect)
    event.listen(engine.sync_engine, "handle_error", _treat_network_failure_as_disconnect)
    return engine


def _asyncpg_connect_args(settings: Settings, *, bound_statements: bool) -> dict[str, Any]:
    args: dict[str, Any] = {"timeout": settings.database_connect_timeout_seconds}
    if bound_statements:
        statement_timeout = settings.database_statement_timeout_seconds
        args["command_timeout"] = statement_timeout + CLIENT_TIMEOUT_GRACE_SECONDS
        args["server_settings"] = {"statement_timeout": str(round(statement_timeout * 1000))}
    return args


def _create_sqlite_engine(url: URL, settings: Settings) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    busy_seconds = settings.database_statement_timeout_seconds
    engine = create_async_engine(url, hide_parameters=True, connect_args={"timeout": busy_seconds})
    event.listen(
        engine.sync_engine,
        "connect",
        partial(_configure_sqlite_connection, busy_ms=round(busy_seconds * 1000)),
    )
    return engine


def _connect(dialect: Dialect, _record: object, cargs: Any, cparams: Any) -> Any:
    """Open a DBAPI connection; a network failure becomes the driver's OperationalError.

    asyncpg raises a refused or timed-out connect as a plain OSError, which SQLAlchemy lets
    through unwrapped; as a driver error it is wrapped and reported like any other.
    """
    try:
        return dialect.connect(*cargs, **cparams)
    except OSError as exc:  # refused, unreachable, unknown host, or the connect timeout
        message = f"cannot connect to the database ({type(exc).__name__})"
        raise dialect.loaded_dbapi.OperationalError(message) from exc


def _treat_network_failure_as_disconnect(context: ExceptionContext) -> BaseException | None:
    """Discard the connection after a network failure or a client-side timeout.

    asyncpg raises those as plain OSError/TimeoutError: SQLAlchemy would neither wrap them nor
    drop the connection, whose state is then unknown (asyncpg itself refuses to reuse it, and
    a rollback on it would wait for a server that does not answer). Marked as a disconnect,
    the connection is closed at once, the pool's others are replaced on their next checkout,
    and the caller gets an `OperationalError` with `connection_invalidated` set.
    """
    failure = context.original_exception
    if not (isinstance(failure, OSError) or isinstance(failure.__cause__, OSError)):
        return None
    context.is_disconnect = True
    connection = context.connection
    if connection is not None and not (connection.closed or connection.invalidated):
        # Drop the socket now (asyncpg's terminate): SQLAlchemy's own close of an invalidated
        # connection first waits up to 2 s for a goodbye the server cannot send.
        terminate = getattr(connection.connection.driver_connection, "terminate", None)
        if callable(terminate):
            terminate()
    if context.sqlalchemy_exception is not None:  # a failed connect, already wrapped
        return None
    return OperationalError(
        context.statement, None, failure, hide_parameters=True, connection_invalidated=True
    )


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot serve right now, not a bug or bad data.

    True for a lost or refused connection, a stalled one (timeouts), no free pooled
    connection in time, a statement canceled by statement_timeout, a server that is
    overloaded, starting or shutting down, and SQLite's lock held past the busy timeout.
    """
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    return isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_BUSY_CODES


def _configure_sqlite_connection(dbapi_connection: Any, _record: object, *, busy_ms: int) -> None:
    # SQLite's own lower() folds ASCII only; case-insensitive search (ILIKE is rendered as
    # lower(x) LIKE lower(y)) must match "Émile" for "émile" as PostgreSQL does.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def create_session_factory(
    engine: AsyncEngine, *, audited: bool = True
) -> async_sessionmaker[AsyncSession]:
    """Return the session factory; objects stay readable after commit.

    Args:
        engine: the engine the sessions use.
        audited: record every change in the audit trail (`core/audit.py`). Only a
            measurement of the trail's cost turns it off.
    """
    if not audited:
        return async_sessionmaker(engine, expire_on_commit=False)
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=AuditedSession)


class ReadOnlySession(Session):
    """A session that refuses to write: the session of GET and HEAD requests.

    It runs on an AUTOCOMMIT connection, where a write would be committed at once, outside
    any unit of work; so a flush or an INSERT/UPDATE/DELETE statement raises instead.
    """


class ReadOnlySessionError(RuntimeError):
    """A GET or HEAD handler tried to write: a bug, refused before anything is written."""


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySessionError("A read-only request (GET, HEAD) must not change data.")


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_write_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError("A read-only request (GET, HEAD) must not change data.")


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the factory of read-only sessions: no transaction, no audit hooks, no writes."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(
        autocommit, expire_on_commit=False, autoflush=False, sync_session_class=ReadOnlySession
    )


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


READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session, one unit of work: committed after the handler.

    Use it with `Depends(get_session, scope="function")` (see `deps.SessionDep`) so the
    commit happens before the response is sent: a client never sees a success that was not
    stored. GET and HEAD get a read-only session (see the module's docstring).
    """
    if request.method in READ_ONLY_METHODS:
        async with request.app.state.read_session_factory() as session:
            yield session
        return
    async with unit_of_work(request.app.state.session_factory) as session:
        yield session
