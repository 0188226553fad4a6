"""Count the SQL statements the app sends to its database while one request runs.

    async with QueryLog(app.state.engine) as log:
        response = await client.get("/api/v1/leads", headers=...)
    assert len(log.statements) <= 3, log.report()

A SQLAlchemy `before_cursor_execute` listener on the app's engine records every statement
(SELECT, INSERT, UPDATE, DELETE; transaction control is not a cursor statement and is not
counted). Only statements run in the block's own context are kept: the in-process ASGI
client runs the request in the test's task (and tasks it starts inherit the context; so do
SQLAlchemy's greenlets), so work another task does at the same time, such as a background
worker's polls, is left out.
"""

import contextvars
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_active: contextvars.ContextVar["QueryLog | None"] = contextvars.ContextVar(
    "query_log", default=None
)


class QueryLog:
    """Record the statements `engine` executes in this context while the block runs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self._token: contextvars.Token[QueryLog | None] | None = None

    async def __aenter__(self) -> "QueryLog":
        self._token = _active.set(self)
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._record)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._record)
        if self._token is not None:
            _active.reset(self._token)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _active.get() is self:
            self.statements.append(" ".join(statement.split()))

    def __len__(self) -> int:
        return len(self.statements)

    def report(self) -> str:
        """Return the statements, numbered, one a line (for an assertion's message)."""
        return "\n".join(f"{n}. {sql[:300]}" for n, sql in enumerate(self.statements, 1))
