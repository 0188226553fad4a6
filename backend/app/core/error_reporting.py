"""Error reports to Sentry, off unless SENTRY_DSN is set.

Reported: what reaches the API's last-resort 500 (`core/middleware.py`), with the request
id, and what ends the worker's send loop. Nothing else is hooked: no framework, database,
HTTP-client or logging integration (each would collect on its own terms), so an event holds
the exception, its stack (code lines, never local variables), the tags below, and the
environment.

Nothing personal or secret leaves: the SDK collects no data (`COLLECT_NOTHING`: user,
cookies, headers, bodies, query strings, SQL values, local variables; sentry-sdk 2.x's
successor of `send_default_pii=False`, which it deprecates and ignores beside it), no
request data is attached, and `scrub_event` replaces the text of database and
validation errors, which quote rows and input, by their safe facts exactly as the logs do
(`core/logging.py`); it also drops request, user and breadcrumb data should a later
integration add some.
"""

from typing import Any

import sentry_sdk
from opentelemetry import trace
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.types import DataCollectionUserOptions, Event, Hint

from backend.app.core.config import Settings
from backend.app.core.logging import safe_chain_texts

FLUSH_SECONDS = 2.0
HIDDEN = "[text hidden]"
_KEPT_REQUEST_FIELDS = ("method",)
COLLECT_NOTHING: DataCollectionUserOptions = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_headers": {"request": {"mode": "off"}},
    "http_bodies": [],
    "url_query_params": {"mode": "off"},
    "graphql": {"document": False, "variables": False},
    "gen_ai": {"inputs": False, "outputs": False},
    "database_query_data": False,
    "queues": False,
    "stack_frame_variables": False,
}


def start_error_reporting(settings: Settings) -> bool:
    """Send unhandled errors to SENTRY_DSN from now on; return whether it is set."""
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment.value,
        data_collection=COLLECT_NOTHING,
        max_request_body_size="never",
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[DedupeIntegration()],
        before_send=scrub_event,
        before_breadcrumb=lambda _crumb, _hint: None,
        auto_session_tracking=False,
        send_client_reports=False,
        shutdown_timeout=FLUSH_SECONDS,
    )
    return True


def stop_error_reporting() -> None:
    """Send what is queued (for up to FLUSH_SECONDS) and stop reporting."""
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=FLUSH_SECONDS)


def report_unhandled(exc: BaseException, *, component: str, request_id: str | None = None) -> None:
    """Report an error nothing handled, tagged with where it happened.

    Args:
        exc: the error.
        component: `api` or `worker`.
        request_id: the request's `X-Request-ID` (API), to find its log lines.
    """
    if not sentry_sdk.is_initialized():
        return
    tags = {"component": component}
    if request_id:
        tags["request_id"] = request_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        tags["trace_id"] = format(span.trace_id, "032x")
    sentry_sdk.capture_exception(exc, tags=tags)


def scrub_event(event: Event, hint: Hint) -> Event:
    """Hide data-bearing exception texts; drop request, user and breadcrumb data."""
    _hide_exception_texts(event, hint)
    request = event.get("request")
    if isinstance(request, dict):
        event["request"] = {k: v for k, v in request.items() if k in _KEPT_REQUEST_FIELDS}
    event.pop("user", None)
    event.pop("breadcrumbs", None)
    for value in _exception_values(event):
        for frame in (value.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return event


def _hide_exception_texts(event: Event, hint: Hint) -> None:
    """Give each exception of the event the text the logs would show for it.

    Sentry lists a chain oldest first; when the event's list does not match the chain (an
    exception group), every text is hidden.
    """
    values = _exception_values(event)
    exc_info = hint.get("exc_info")
    error = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) == 3 else None
    texts = list(reversed(safe_chain_texts(error))) if isinstance(error, BaseException) else []
    if len(texts) != len(values):
        texts = [HIDDEN] * len(values)
    for value, text in zip(values, texts, strict=True):
        value["value"] = text


def _exception_values(event: Event) -> list[dict[str, Any]]:
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else None
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []
