"""Pure ASGI middleware: request id, security headers, access log, metrics, body limit, CORS.

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

from backend.app.core.error_handlers import error_response
from backend.app.core.error_reporting import report_unhandled
from backend.app.core.metrics import RequestMetrics

access_logger = logging.getLogger("app.access")
error_logger = logging.getLogger("app.errors")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Sent on every response that does not set the header itself (a page with scripts sets its
# own Content-Security-Policy, as /docs and the dev checkout page do). The API answers JSON
# that nobody should frame, sniff into HTML, or learn the referring URL from.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]


def security_headers(hsts_max_age: int | None) -> list[tuple[bytes, bytes]]:
    """Return the security headers for every response; HSTS only when `hsts_max_age` is set.

    Args:
        hsts_max_age: `Strict-Transport-Security` max-age in seconds (production), or None
            for no HSTS (development serves plain HTTP on localhost).
    """
    if hsts_max_age is None:
        return list(SECURITY_HEADERS)
    return [*SECURITY_HEADERS, (b"strict-transport-security", b"max-age=%d" % hsts_max_age)]


class RequestContextMiddleware:
    """Give every request an id and security headers, log it, turn any crash into a clean 500.

    The caller's `X-Request-ID` is kept when it is 1-128 characters of `A-Za-z0-9._-`;
    otherwise a new one is made. Handlers may set `request.state.user_id` for the log line.
    Outermost, so every answer gets the headers: the app's, and those other middleware build
    (413, CORS refusals, 500). A header the response already has is left as it is. With
    `metrics`, every request is also counted and timed there, under its route template.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts_max_age: int | None = None,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.app = app
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
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                present = {key.lower() for key, _ in headers}
                headers.extend(h for h in self.default_headers if h[0] not in present)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        metrics = self.metrics
        if metrics is not None:
            metrics.started()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            error_logger.exception("unhandled error", extra={"request_id": request_id})
            report_unhandled(exc, component="api", request_id=request_id)
            if not response_started:
                await error_response(scope, 500)(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if metrics is not None:
                metrics.finished(scope, status, seconds)
            access_logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "request_id": request_id,
                    "user_id": state.get("user_id"),
                },
            )


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

    Installed innermost, so the answer still passes through CORS (a browser can read it)
    and the request-id middleware. `RequestContextMiddleware` keeps a last-resort catch for
    anything that fails outside this one.
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


class BodySizeLimitMiddleware:
    """Answer 413 to request bodies over `max_bytes`, by header or by counting the stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await error_response(scope, 413)(scope, receive, send)
                return
        received = 0
        tracked = _StartTrackingSend(send)

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, counting_receive, tracked)
        except _BodyTooLargeError:
            if tracked.started:
                raise
            await error_response(scope, 413)(scope, receive, send)


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
