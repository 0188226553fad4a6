"""Turn errors into the contract's body: the response builders and the exception handlers.

`register_error_handlers(app)` maps our `AppError` types (see `errors.py`), FastAPI's
validation errors, Starlette's HTTP errors and an unavailable database (503
`database_unavailable`, from any route) to `{"code", "message", "details", "request_id"}`.
Middleware answers (413, CORS refusals, the last-resort 500) are built with `error_response`
too, so every error looks the same. `document_body_errors(app)` documents the errors any
request body can cause on every operation that reads one.
"""

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from backend.app.core.database import is_database_unavailable
from backend.app.core.errors import (
    GENERIC_CODES,
    GENERIC_MESSAGES,
    AppError,
    DatabaseUnavailableError,
    error_responses,
    status_for,
)

logger = logging.getLogger("app.errors")

FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORM_MEDIA_TYPE_MESSAGE = (
    "The request body must be a form (Content-Type: application/x-www-form-urlencoded)."
)


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


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json_media_type(content_type: str | None) -> bool:
    media = _media_type(content_type)
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _wrong_media_type_message(request: Request, exc: RequestValidationError) -> str | None:
    """The 415 message if the body failed because it is not of the route's media type.

    A JSON-body route sent a non-empty body not declared as JSON; a form route sent a body
    declared as something other than a form (FastAPI reads it as an empty form).
    """
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None:
        return None
    content_type = request.headers.get("content-type")
    if isinstance(body_field.field_info, params.Form):
        sent_other = content_type is not None and _media_type(content_type) not in FORM_MEDIA_TYPES
        return FORM_MEDIA_TYPE_MESSAGE if sent_other else None
    if _is_json_media_type(content_type):
        return None
    body_refused = any(
        tuple(err.get("loc", ())) == ("body",) and err.get("type") != "missing"
        for err in exc.errors()
    )
    return GENERIC_MESSAGES[415] if body_refused else None


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    wrong_media_type = _wrong_media_type_message(request, exc)
    if wrong_media_type:
        return error_response(request.scope, 415, message=wrong_media_type)
    details = _validation_details(exc)
    logger.info(
        "validation failed",
        extra={"problems": [{"loc": d["loc"], "type": d["type"]} for d in details]},
    )
    where = ", ".join(".".join(str(p) for p in d["loc"]) for d in details[:3])
    message = f"The request is invalid: check {where}." if where else GENERIC_MESSAGES[422]
    return error_response(request.scope, 422, message=message, details=details)


def _allowed_methods(request: Request) -> list[str]:
    """Every method a route of the app accepts at the request's path, in route order.

    FastAPI makes one route per method, and routing answers 405 from the first route whose
    path matched, so its `Allow` would name that route's methods alone.
    """
    root_path = request.scope.get("app_root_path", request.scope.get("root_path", ""))
    probe = {**request.scope, "root_path": root_path}  # as the app's router saw it
    allowed: list[str] = []
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.matches(probe)[0] is not Match.NONE:
            allowed += [method for method in sorted(route.methods) if method not in allowed]
    return allowed


async def _handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    message = GENERIC_MESSAGES.get(status)
    if status == 404:
        message = f"No route matches {request.method} {request.url.path}."
    if status == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return error_response(request.scope, status, message=message, headers=headers)


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers that turn every expected error into the contract's body."""
    app.add_exception_handler(AppError, _handle_app_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(SQLAlchemyError, _handle_database_error)


BODY_ERROR_STATUSES = (400, 413, 415, 422)
ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"


def _body_error_docs(*, form: bool) -> dict[str, dict[str, Any]]:
    """The OpenAPI responses of the errors any request body can cause."""
    docs: dict[str, dict[str, Any]] = {}
    for status, doc in error_responses(*BODY_ERROR_STATUSES).items():
        example = doc["content"]["application/json"]["example"]
        description = doc["description"]
        if form and status == 415:  # a form route's 415 names the form media type
            example = {**example, "message": FORM_MEDIA_TYPE_MESSAGE}
            description = f"`{example['code']}`: {FORM_MEDIA_TYPE_MESSAGE}"
        docs[str(status)] = {
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}, "example": example}
            },
        }
    return docs


def document_shared_errors(app: FastAPI, *, api_prefix: str) -> None:
    """Document the errors no route raises itself but any may answer, on every operation.

    - 400, 413, 415 and 422 wherever a request body is read: any body can be unparseable
      (400: invalid UTF-8, a broken multipart form), too large (413), of the wrong media type
      (415) or invalid (422). A status a route documents itself (e.g. a 422 with its own
      codes) is kept.
    - 422 in our error shape on every API operation (a parameter it does not declare is
      refused, see `deps.refuse_unknown_query_parameters`), instead of FastAPI's own.
    - 503 `database_unavailable` on every operation under `api_prefix`, merged into a 503 the
      route documents for its own reasons (FastAPI would otherwise let the route's replace it).

    So routes list only their own errors, and a route added later has these too. Wraps
    `app.openapi`, FastAPI's hook for extending the schema.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for path, path_item in schema.get("paths", {}).items():
            for operation in path_item.values():
                responses = {
                    status: doc
                    for status, doc in operation["responses"].items()
                    if not _is_fastapi_default_422(status, doc)
                }
                content = operation.get("requestBody", {}).get("content", {})
                if content:
                    form = any(media in content for media in FORM_MEDIA_TYPES)
                    responses = {**_body_error_docs(form=form), **responses}
                elif path.startswith(api_prefix) and "422" not in responses:
                    responses["422"] = _body_error_docs(form=False)["422"]  # query parameters
                if path.startswith(api_prefix):
                    responses["503"] = _with_database_unavailable(responses.get("503"))
                operation["responses"] = dict(sorted(responses.items()))
        components = schema.get("components", {}).get("schemas", {})
        if "/HTTPValidationError" not in json.dumps(schema.get("paths", {})):
            components.pop("HTTPValidationError", None)  # never sent: our 422 replaces it
            components.pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _is_fastapi_default_422(status: str, doc: dict[str, Any]) -> bool:
    """Whether `doc` is FastAPI's own 422 (`HTTPValidationError`), which we never send."""
    schema = doc.get("content", {}).get("application/json", {}).get("schema", {})
    return status == "422" and schema.get("$ref", "").endswith("/HTTPValidationError")


def _with_database_unavailable(doc: dict[str, Any] | None) -> dict[str, Any]:
    """A 503's documentation, listing `database_unavailable` among its codes."""
    [unavailable] = error_responses(DatabaseUnavailableError).values()
    if doc is None:
        return {"description": unavailable["description"], "content": _error_content(unavailable)}
    if DatabaseUnavailableError.code in doc.get("description", ""):
        return doc
    return {**doc, "description": f"{doc['description']}  \n{unavailable['description']}"}


def _error_content(doc: dict[str, Any]) -> dict[str, Any]:
    example = doc["content"]["application/json"]["example"]
    return {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}, "example": example}}
