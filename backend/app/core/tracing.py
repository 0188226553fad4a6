"""OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

On, a process has:
- a span for each request: FastAPI's own telemetry (`telemetry_config`), named after the
  route template (`GET /api/v1/leads/{lead_id}`), with spans for dependencies and the handler;
- a span for each SQL statement run inside another span (`SqlSpans`): statements outside
  any span, such as the worker's idle polls, make no trace of their own;
- a span for each outgoing HTTP call (opentelemetry-instrumentation-httpx: Twilio, Stripe,
  FHIR), which also sends `traceparent` along;
- a span for each text the worker sends, linked to the request that queued it: the request
  stores `current_trace_context()` with the queued row, the worker opens
  `linked_span(name, that context)`.
Log lines written inside a span carry its `trace_id` and `span_id` (core/logging.py).

Off, nothing is installed: no middleware, no event listener, no patched transport, and
FastAPI's telemetry is switched off; `linked_span` makes a span that records nothing.

What leaves: query strings with their values replaced (a search term, a phone number in a
Twilio lookup), SQL without its values, and database errors as their type and SQLSTATE
(the driver's text quotes rows), as in the logs.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.app.core.config import Settings
from backend.app.core.logging import safe_exception_text

TRACES_PATH = "/v1/traces"  # appended to OTEL_EXPORTER_OTLP_ENDPOINT, as the spec says
FLUSH_TIMEOUT_MILLIS = 5000
MAX_STATEMENT_CHARS = 2000
REDACTED = "REDACTED"
_URL_ATTRIBUTES = ("url.full", "http.url", "http.target")
_QUERY_ATTRIBUTE = "url.query"
_SPAN_INFO = "otel_span"  # in a connection's `info` while its statement runs
_PROPAGATOR = TraceContextTextMapPropagator()


def tracing_enabled(settings: Settings) -> bool:
    """Whether this process traces (OTEL_EXPORTER_OTLP_ENDPOINT is set)."""
    return bool(settings.otel_exporter_otlp_endpoint)


def telemetry_config(settings: Settings) -> TelemetryConfig:
    """FastAPI's own telemetry: request spans when tracing, never its metrics or logs.

    Its logs would carry exception texts; metrics are Prometheus's job here (core/metrics.py).
    Switched off entirely without tracing, so a request does not even look for a provider.
    """
    on = tracing_enabled(settings)
    return {
        "tracing": on,
        "operation_spans": on,
        "metrics": False,
        "logs": False,
        "auto_configure": False,
    }


class RedactingSpanProcessor(SpanProcessor):
    """Replace the values of query strings in URL attributes as each span starts."""

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        """Rewrite the span's URL attributes, if it has any."""
        attributes: Mapping[str, object] = span.attributes or {}
        for key in _URL_ATTRIBUTES:
            value = attributes.get(key)
            if isinstance(value, str) and "?" in value:
                span.set_attribute(key, redact_url(value))
        query = attributes.get(_QUERY_ATTRIBUTE)
        if isinstance(query, str) and query:
            span.set_attribute(_QUERY_ATTRIBUTE, redact_query(query))


def redact_url(url: str) -> str:
    """`url` with the value of every query parameter replaced by REDACTED."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=redact_query(parts.query)))


def redact_query(query: str) -> str:
    """`a=1&b=2` -> `a=REDACTED&b=REDACTED`: the names stay, the values go."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(name, REDACTED) for name, _ in pairs], safe=REDACTED)


def install_tracer_provider(service_name: str, exporter: SpanExporter) -> TracerProvider:
    """Make the process's tracer provider: spans batched to `exporter`, URLs redacted.

    A process has one. If one is installed already (by a test, or `opentelemetry-instrument`
    wrapping the command), that one is returned as it is.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(RedactingSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


class SqlSpans:
    """A span for each statement `engine` runs while another span is current."""

    def __init__(self, engine: AsyncEngine, tracer: trace.Tracer) -> None:
        self._engine = engine.sync_engine
        self._tracer = tracer
        self._attributes = {"db.system": engine.dialect.name}
        if engine.url.database:
            self._attributes["db.name"] = engine.url.database
        event.listen(self._engine, "before_cursor_execute", self._before)
        event.listen(self._engine, "after_cursor_execute", self._after)
        event.listen(self._engine, "handle_error", self._failed)

    def remove(self) -> None:
        """Stop tracing the engine's statements."""
        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)
        event.remove(self._engine, "handle_error", self._failed)

    def _before(self, conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        if not trace.get_current_span().get_span_context().is_valid:
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        conn.info[_SPAN_INFO] = self._tracer.start_span(
            operation,
            kind=SpanKind.CLIENT,
            attributes={**self._attributes, "db.statement": statement[:MAX_STATEMENT_CHARS]},
        )

    def _after(self, conn: Connection, *_args: object) -> None:
        span: Span | None = conn.info.pop(_SPAN_INFO, None)
        if span is not None:
            span.end()

    def _failed(self, context: ExceptionContext) -> None:
        conn = context.connection
        span: Span | None = conn.info.pop(_SPAN_INFO, None) if conn is not None else None
        if span is not None:
            description = safe_exception_text(context.original_exception)
            span.set_status(Status(StatusCode.ERROR, description))
            span.end()


class Tracing:
    """Tracing as one part of a process (the API app, a worker) turned it on; `close` undoes it."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer(__name__)
        self._sql: list[SqlSpans] = []
        self._httpx = HTTPXClientInstrumentor()
        self._owns_httpx = not self._httpx.is_instrumented_by_opentelemetry
        if self._owns_httpx:
            self._httpx.instrument(tracer_provider=provider)

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """Trace the SQL statements `engine` runs inside a span."""
        self._sql.append(SqlSpans(engine, self._tracer))

    def close(self) -> None:
        """Remove what was installed and send the spans still buffered."""
        for sql in self._sql:
            sql.remove()
        if self._owns_httpx:
            self._httpx.uninstrument()
        self.provider.force_flush(FLUSH_TIMEOUT_MILLIS)


def start_tracing(settings: Settings, *, default_service_name: str) -> Tracing | None:
    """Turn tracing on for this process if OTEL_EXPORTER_OTLP_ENDPOINT is set, else None.

    Spans go to `<endpoint>/v1/traces` (OTLP over HTTP), named `OTEL_SERVICE_NAME` or
    `default_service_name`. The SDK reads the other standard variables (OTEL_TRACES_SAMPLER,
    OTEL_EXPORTER_OTLP_HEADERS, ...) from the environment itself.
    """
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return None
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + TRACES_PATH)
        name = settings.otel_service_name or default_service_name
        provider = install_tracer_provider(name, exporter)
    return Tracing(provider)


def current_trace_context() -> str | None:
    """The W3C `traceparent` of the current span, to store with work queued for later.

    None when no span is current (tracing off, or outside a request).
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def linked_span(
    name: str, trace_context: str | None, attributes: Mapping[str, str | int] | None = None
) -> Iterator[Span]:
    """Run the block in a new span (a trace of its own) linked to `trace_context`.

    Args:
        name: the span's name, e.g. `sms.send`.
        trace_context: a `traceparent` from `current_trace_context()`, stored when the work
            was queued; None or unreadable: no link.
        attributes: ids that help find the span (no personal data).
    """
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # tracing off: no span
        yield INVALID_SPAN  # a no-op span per send cost ~4% of the worker's CPU (profiled)
        return
    parent = trace.get_current_span(_PROPAGATOR.extract({"traceparent": trace_context or ""}))
    span_context = parent.get_span_context()
    links = [Link(span_context)] if span_context.is_valid else []
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span(
        name,
        context=otel_context.Context(),  # a root: the queued work is a trace of its own
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    ) as span:
        yield span
