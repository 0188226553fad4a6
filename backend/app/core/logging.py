"""Structured JSON logging: one JSON object per line on stdout.

No line may carry a secret or personal data. Code logs ids, codes and counts, never values;
the formatter hides what code does not write itself, wherever an exception appears (the
`exception` traceback with its whole chain, `extra=` fields, message arguments):

- the text of database errors and of everything they were raised from: a driver quotes the
  row it refused (PostgreSQL's `Key (email)=(...)`, `Failing row contains (...)`, asyncpg's
  `invalid input for query argument $1: ...`). What is kept: the type, the SQL (never its
  parameters), the SQLSTATE or SQLite error name, and the constraint, table and column;
- the text of validation errors (pydantic quotes the input): where and what type remains.

A line written inside an OpenTelemetry span (tracing on, see core/tracing.py) carries the
span's `trace_id` and `span_id`, so a log line leads to its trace and back.
"""

import json
import logging
import sqlite3
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi.exceptions import ValidationException
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy.exc import EmulatedDBAPIException, StatementError

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_HIDDEN = "[text hidden: it may quote data]"
_SAFE_DATABASE_FIELDS = (
    "sqlstate",
    "sqlite_errorname",
    "constraint_name",
    "table_name",
    "column_name",
)
_MAX_SQL_CHARS = 2000
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


class JsonFormatter(logging.Formatter):
    """Render a log record, and any `extra=` fields, as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON string."""
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = _safe_value(value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            payload["trace_id"] = format(span.trace_id, "032x")
            payload["span_id"] = format(span.span_id, "016x")
        if record.exc_info and record.exc_info[1] is not None:
            payload["exception"] = format_exception_safely(record.exc_info[1])
        return json.dumps(payload, default=str)


def format_exception_safely(exc: BaseException) -> str:
    """Format `exc` and its chain as `traceback` does, with data-bearing texts hidden.

    A database error's text is replaced by its safe facts, and so is the text of everything
    older in its chain (the driver's own errors, which hold the detail lines).
    """
    parts: list[str] = []
    for (link, joiner), text in zip(_chain(exc), safe_chain_texts(exc), strict=True):
        frames = traceback.format_tb(link.__traceback__)
        header = "Traceback (most recent call last):\n" if frames else ""
        block = f"{header}{''.join(frames)}{_type_name(link)}: {text}\n"
        if isinstance(link, BaseExceptionGroup):
            for number, member in enumerate(link.exceptions, 1):
                block += (
                    f"+-- exception {number} of the group:\n{format_exception_safely(member)}\n"
                )
        parts.append(block + joiner)
    return "".join(reversed(parts)).rstrip("\n")


def safe_chain_texts(exc: BaseException) -> list[str]:
    """The texts of `exc` and of what it was raised from or during, newest first.

    Hidden as `format_exception_safely` hides them: a database error's, and every older one's.
    """
    texts: list[str] = []
    hiding = False
    for link, _joiner in _chain(exc):
        hiding = hiding or _is_database_error(link)
        texts.append(_database_text(link) if hiding else _text(link))
    return texts


def safe_exception_text(exc: BaseException) -> str:
    """One line for `exc` (type and text), its text hidden if it may quote data."""
    text = _database_text(exc) if _is_database_error(exc) else _text(exc)
    return f"{_type_name(exc)}: {text}"


def _chain(exc: BaseException) -> list[tuple[BaseException, str]]:
    """`exc`, then what it was raised from or during, newest first.

    Each comes with the line that follows it in a traceback, joining it to the newer one.
    """
    links: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    joiner = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        links.append((current, joiner))
        if current.__cause__ is not None:
            current, joiner = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, joiner = current.__context__, _CONTEXT
        else:
            current = None
    return links


def _is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, StatementError | EmulatedDBAPIException | sqlite3.Error) or (
        type(exc).__module__.partition(".")[0] == "asyncpg"
    )


def _database_text(exc: BaseException) -> str:
    facts = [_HIDDEN]
    for name in _SAFE_DATABASE_FIELDS:
        value = getattr(exc, name, None)
        if isinstance(value, str) and value:
            facts.append(f"{name}={value}")
    if isinstance(exc, StatementError) and exc.statement:
        facts.append(f"[SQL: {exc.statement[:_MAX_SQL_CHARS]}]")
    return " ".join(facts)


def _text(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        problems = exc.errors(include_input=False, include_url=False, include_context=False)
    elif isinstance(exc, ValidationException):
        problems = list(exc.errors())
    else:
        try:
            return str(exc)
        except Exception:  # noqa: BLE001 - a broken __str__ must not lose the log line
            return "[text unavailable]"
    where = "; ".join(
        f"{'.'.join(str(part) for part in problem.get('loc', ()))} ({problem.get('type')})"
        for problem in problems
    )
    return f"{len(problems)} validation error(s): {where}"


def _type_name(exc: BaseException) -> str:
    module = type(exc).__module__
    name = type(exc).__qualname__
    return name if module in {"builtins", "__main__"} else f"{module}.{name}"


def _safe_value(value: object) -> object:
    return safe_exception_text(value) if isinstance(value, BaseException) else value


def _message(record: logging.LogRecord) -> str:
    """`record.getMessage()`, with exceptions among the arguments rendered safely."""
    message = str(record.msg)
    args = record.args
    if not args:
        return message
    if isinstance(args, Mapping):
        return message % {key: _safe_value(value) for key, value in args.items()}
    return message % tuple(_safe_value(value) for value in args)


def configure_logging(level: str) -> None:
    """Send every logger's records to stdout as JSON lines at `level`."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every outbound request at INFO; our integrations log what matters themselves.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
    # At DEBUG these drivers log every statement with its parameters (names, hashes, bodies);
    # SQLAlchemy logs every statement at INFO. Neither belongs in the app's log.
    for name in ("aiosqlite", "asyncpg"):
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
    logging.getLogger("sqlalchemy.engine").setLevel(max(root.level, logging.WARNING))
