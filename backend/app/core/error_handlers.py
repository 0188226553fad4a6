"""Turn errors into the contract's body: the response builders and the exception handlers.

`register_error_handlers(app)` maps our `AppError` types (see `errors.py`), FastAPI's
validation errors, Starlette's HTTP errors and an unavailable database (503
`database_unavailable`, from any route) to `{"code", "message", "details", "request_id"}`.
Middleware answers (413, CORS refusals, the last-resort 500) are built with `error_response`
too, so every error looks the same.
"""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from backend.app.core.database import is_database_unavailable
from backend.app.core.errors import (
    GENERIC_CODES,
    GENERIC_MESSAGES,
    AppError,
    DatabaseUnavailableError,
    status_for,
)

logger = logging.getLogger("app.errors")


def request_id_of(scope: Scope) -> str:
    """Return the request id `RequestContextMiddleware` put in the scope ("" if none)."""
    state = scope.get("state") or {}
    return str(state.get("request_id", ""))


def error_body(
    scope: Scope,
    status: int,
    *,
    code: str | None = None,
    message: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the contract's error body for a response to the request in `scope`."""
    return {
        "code": code or GENERIC_CODES.get(status, "error"),
        "message": message or GENERIC_MESSAGES.get(status, "The request failed."),
        "details": details,
        "request_id": request_id_of(scope),
    }


def error_response(
    scope: Scope,
    status: int,
    *,
    code: str | None = None,
    message: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build a JSON error response in the contract's shape."""
    all_headers = {"X-Request-ID": request_id_of(scope), **(headers or {})}
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    body = error_body(scope, status, code=code, message=message, details=details)
    return JSONResponse(body, status_code=status, headers=all_headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Keep where and what of each problem, never the submitted value."""
    return [
        {
            "loc": list(err.get("loc", ())),
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


async def _handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = {"Retry-After": str(math.ceil(exc.retry_after))} if exc.retry_after else {}
    return error_response(
        request.scope,
        status_for(type(exc)),
        code=exc.code,
        message=exc.message,
        details=exc.details,
        headers=headers,
    )


async def _handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer 503 `database_unavailable` when the database cannot serve; re-raise the rest.

    Anything else (a bug, bad data) goes on to the last-resort handler, which logs it and
    answers 500.

    Raises:
        SQLAlchemyError: `exc` itself, when the database is not the problem.
    """
    assert isinstance(exc, SQLAlchemyError)
    if not is_database_unavailable(exc):
        raise exc
    cause = exc.orig if isinstance(exc, DBAPIError) else None
    logger.warning(
        "database unavailable",
        extra={"error": type(exc).__name__, "cause": type(cause).__name__ if cause else None},
    )
    return await _handle_app_error(request, DatabaseUnavailableError())


def _is_json_media_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _sent_wrong_media_type(request: Request, exc: RequestValidationError) -> bool:
    """Whether a JSON-body route was sent a non-empty body that is not declared as JSON."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None or isinstance(body_field.field_info, params.Form):
        return False
    if _is_json_media_type(request.headers.get("content-type")):
        return False
    return any(
        tuple(err.get("loc", ())) == ("body",) and err.get("type") != "missing"
        for err in exc.errors()
    )


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _sent_wrong_media_type(request, exc):
        return error_response(request.scope, 415)
    details = _validation_details(exc)
    logger.info(
        "validation failed",
        extra={"problems": [{"loc": d["loc"], "type": d["type"]} for d in details]},
    )
    where = ", ".join(".".join(str(p) for p in d["loc"]) for d in details[:3])
    message = f"The request is invalid: check {where}." if where else GENERIC_MESSAGES[422]
    return error_response(request.scope, 422, message=message, details=details)


async def _handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    message = GENERIC_MESSAGES.get(status)
    if status == 404:
        message = f"No route matches {request.method} {request.url.path}."
    return error_response(request.scope, status, message=message, headers=headers)


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers that turn every expected error into the contract's body."""
    app.add_exception_handler(AppError, _handle_app_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(SQLAlchemyError, _handle_database_error)
