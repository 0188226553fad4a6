"""Pure ASGI middleware: one layer for every request (`RequestContextMiddleware`), and CORS.

An error no handler took is answered 500, logged, and reported to Sentry when SENTRY_DSN is
set (`core/error_reporting.py`).
"""

import logging
import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.app.core.audit_context import end_request_context, start_request_context
from backend.app.core.error_handlers import error_response
from backend.app.core.error_reporting import report_unhandled
from backend.app.core.metrics import RequestMetrics

access_logger = logging.getLogger("app.access")
error_logger = logging.getLogger("app.errors")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Sent on every response that does not set the header itself (a page with scripts sets its
# own Content-Security-Policy, as /docs and the dev checkout page do). The API answers JSON
# that nobody should frame, sniff into HTML, or learn the referring URL from.
Header = tuple[bytes, bytes]
SECURITY_HEADERS: list[Header] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]


def security_headers(hsts_max_age: int | None) -> list[Header]:
    """Return the security headers for every response; HSTS only when `hsts_max_age` is set.

    Args:
        hsts_max_age: `Strict-Transport-Security` max-age in seconds (production), or None
            for no HSTS (development serves plain HTTP on localhost).
    """
    if hsts_max_age is None:
        return list(SECURITY_HEADERS)
    return [*SECURITY_HEADERS, (b"strict-transport-security", b"max-age=%d" % hsts_max_age)]


class RequestContextMiddleware:
    """The one layer around every HTTP request: id, audit context, body limit, headers, log.

    In one pure-ASGI layer (each layer costs a call and a closure per request):

    - **Request id**: the caller's `X-Request-ID` is kept when it is 1-128 characters of
      `A-Za-z0-9._-`; otherwise a new one is made. It is in the scope's state, the audit
      context, the response header and the access log line.
    - **Audit context** (`core/audit_context.py`): actor `anonymous`, the request id and the
      client address, until the user or a webhook names itself.
    - **Body limit**: a body over `max_body_bytes`, by `Content-Length` or by counting the
      stream, answers 413.
    - **Errors**: any exception no handler took is logged, reported (Sentry, when on) and
      answered with the contract's 500, if the response has not started.
    - **Headers**: the security headers on every answer, unless the response sets its own.
    - **Metrics and log**: with `metrics`, each request is counted and timed under its route
      template; one JSON access line (method, path, status, duration, ids), built only when
      the `app.access` logger is enabled.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int | None = None,
        hsts_max_age: int | None = None,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.default_headers = security_headers(hsts_max_age)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        audit_token = start_request_context(request_id, scope.get("client"))
        response = _ResponseStart(send, request_id.encode(), self.default_headers)
        started = time.perf_counter()
        if self.metrics is not None:
            self.metrics.started()
        try:
            await self._serve(scope, receive, response)
        except Exception as exc:
            error_logger.exception("unhandled error", extra={"request_id": request_id})
            report_unhandled(exc, component="api", request_id=request_id)
            if not response.started:
                await error_response(scope, 500)(scope, receive, response)
        finally:
            end_request_context(audit_token)
            self._finish(scope, response.status, time.perf_counter() - started)

    async def _serve(self, scope: Scope, receive: Receive, send: "_ResponseStart") -> None:
        limit = self.max_body_bytes
        length = _content_length(scope) if limit is not None else None
        if limit is None or length == 0:
            await self.app(scope, receive, send)
        elif length is not None and length > limit:
            await error_response(scope, 413)(scope, receive, send)
        else:
            try:
                await self.app(scope, _counting(receive, limit), send)
            except _BodyTooLargeError:
                if send.started:
                    raise
                await error_response(scope, 413)(scope, receive, send)

    def _finish(self, scope: Scope, status: int, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.finished(scope, status, seconds)
        if access_logger.isEnabledFor(logging.INFO):
            access_logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "request_id": scope["state"]["request_id"],
                    "user_id": scope["state"].get("user_id"),
                },
            )


class _ResponseStart:
    """Wrap `send`: add the request id and security headers, remember status and start."""

    def __init__(self, send: Send, request_id: bytes, default_headers: list[Header]) -> None:
        self._send = send
        self._request_id = request_id
        self._default_headers = default_headers
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started, self.status = True, message["status"]
            headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
            present = {key.lower() for key, _ in headers}
            headers.extend(h for h in self._default_headers if h[0] not in present)
            headers.append((b"x-request-id", self._request_id))
            message["headers"] = headers
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    """The declared body length: 0 for none (no Content-Length, no chunked body)."""
    chunked = False
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
        if key == b"transfer-encoding":
            chunked = True
    return None if chunked else 0


def _counting(receive: Receive, limit: int) -> Receive:
    """Wrap `receive` to raise `_BodyTooLargeError` once the body passes `limit` bytes."""
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLargeError
        return message

    return counting_receive


class _StartTrackingSend:
    """Wrap `send` and remember whether the response has started (then no error page)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class UnhandledErrorMiddleware:
    """Answer any exception no handler took with the contract's 500, and log it.

    Installed inside `JsonCORSMiddleware` when CORS is on, so that answer still carries the
    CORS headers (a browser can read it). `RequestContextMiddleware` catches the rest.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _StartTrackingSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if tracked.started:
                raise
            request_id = scope.get("state", {}).get("request_id")
            error_logger.exception("unhandled error", extra={"request_id": request_id})
            report_unhandled(exc, component="api", request_id=request_id)
            await error_response(scope, 500)(scope, receive, send)


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.match(text) else None
    return None


class _BodyTooLargeError(StarletteHTTPException):
    """Raised while reading a streamed body past the limit.

    An HTTPException, so FastAPI re-raises it from its body parsing (which turns any other
    error into a 400) and our handler answers 413 in the contract's shape.
    """

    def __init__(self) -> None:
        super().__init__(status_code=413)


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with refused preflights answered in our error shape."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:
                    reason = bytes(response.body).decode()
                    response = error_response(
                        scope, 400, message=f"CORS preflight refused: {reason}."
                    )
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
