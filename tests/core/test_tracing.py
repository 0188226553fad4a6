"""OpenTelemetry: request and SQL spans, trace ids in the logs, redaction, and nothing when off.

Spans are caught by the SDK's in-memory exporter (tests/spans.py).
"""

import json

from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text

from backend.app.core.deps import SessionDep
from backend.app.core.tracing import current_trace_context, linked_span
from tests.conftest import client_for, make_settings, running_app
from tests.factories import make_member
from tests.spans import UNUSED_OTLP_ENDPOINT

ME_SPAN = "GET /api/v1/users/me"
SECRET_EMAIL = "zebulon.quarterhouse@example.com"
SECRET_NAME = "Zebulon Quarterhouse"


def traced(database_url: str, **overrides: object):
    return running_app(
        make_settings(database_url, otel_exporter_otlp_endpoint=UNUSED_OTLP_ENDPOINT, **overrides)
    )


def hex_trace(span) -> str:
    return format(span.context.trace_id, "032x")


async def test_a_request_is_a_span_named_after_its_route_with_its_sql_inside(database_url, spans):
    async with traced(database_url) as app, client_for(app) as http:
        member = await make_member(http, SECRET_EMAIL)
        spans.exporter.clear()
        response = await http.get("/api/v1/users/me", headers=member.headers)
    assert response.status_code == 200
    [server] = spans.named(ME_SPAN)
    assert server.kind is SpanKind.SERVER
    assert server.attributes["http.route"] == "/api/v1/users/me"
    assert server.attributes["http.response.status_code"] == 200
    inside = [s for s in spans.finished() if s.context.trace_id == server.context.trace_id]
    sql = [s for s in inside if s.kind is SpanKind.CLIENT and "db.statement" in s.attributes]
    assert [s.name for s in sql] == ["SELECT"]  # the token's user
    assert {s.attributes["db.system"] for s in sql} == {app.state.engine.dialect.name}
    assert SECRET_EMAIL not in json.dumps([dict(s.attributes) for s in inside])


async def test_log_lines_carry_the_trace_and_span_ids(database_url, spans, capsys):
    async with traced(database_url, log_level="INFO") as app, client_for(app) as http:
        await http.get("/health", headers={"X-Request-ID": "traced-1"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    [access] = [line for line in lines if line.get("request_id") == "traced-1"]
    [server] = spans.named("GET /health")
    assert access["trace_id"] == hex_trace(server)
    assert access["span_id"] == format(server.context.span_id, "016x")


async def test_log_lines_carry_no_trace_id_when_tracing_is_off(database_url, spans, capsys):
    settings = make_settings(database_url, log_level="INFO")
    async with running_app(settings) as app, client_for(app) as http:
        await http.get("/health", headers={"X-Request-ID": "untraced-1"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    [access] = [line for line in lines if line.get("request_id") == "untraced-1"]
    assert "trace_id" not in access
    assert "span_id" not in access


async def test_query_strings_leave_without_their_values(database_url, spans):
    async with traced(database_url) as app, client_for(app) as http:
        member = await make_member(http)
        await http.get(
            "/api/v1/audit-events", params={"actor": SECRET_NAME}, headers=member.headers
        )
    [server] = spans.named("GET /api/v1/audit-events")
    assert server.attributes["url.query"] == "actor=REDACTED"
    assert "Zebulon" not in json.dumps([dict(s.attributes) for s in spans.finished()])


async def test_a_database_error_leaves_no_row_data_in_its_span(postgresql_url, spans):
    async def cast(session: SessionDep) -> None:
        # PostgreSQL's answer quotes the value: invalid input syntax for type integer: "..."
        await session.execute(
            text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": "secret-8472"}
        )

    async with traced(postgresql_url) as app, client_for(app) as http:
        app.add_api_route("/test-only/cast", cast)
        response = await http.get("/test-only/cast")
    assert response.status_code == 500
    failed_sql = [s for s in spans.finished() if "db.statement" in (s.attributes or {})]
    [failed] = [s for s in failed_sql if s.status.status_code is StatusCode.ERROR]
    assert "CAST" in failed.attributes["db.statement"]
    assert "sqlstate=22P02" in (failed.status.description or "")
    assert "secret-8472" not in str(failed.status.description) + str(dict(failed.attributes))


async def test_current_trace_context_is_the_requests(database_url, spans):
    async def context() -> dict[str, str | None]:
        return {"traceparent": current_trace_context()}

    async with traced(database_url) as app, client_for(app) as http:
        app.add_api_route("/test-only/context", context)
        traceparent = (await http.get("/test-only/context")).json()["traceparent"]
    [server] = spans.named("GET /test-only/context")
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, trace_id) == ("00", hex_trace(server))
    assert int(flags, 16) & 1  # sampled
    assert span_id in {format(s.context.span_id, "016x") for s in spans.finished()}


async def test_a_linked_span_is_a_trace_of_its_own_linked_to_the_stored_context(spans):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("queue it") as request:
        stored = current_trace_context()
    assert current_trace_context() is None  # no span current here
    with linked_span("work", stored, {"message.id": 7}):
        pass
    with linked_span("unlinked", None), linked_span("garbled", "not-a-traceparent"):
        pass
    [work] = spans.named("work")
    assert [link.context.span_id for link in work.links] == [request.get_span_context().span_id]
    assert work.parent is None
    assert work.context.trace_id != request.get_span_context().trace_id
    assert work.attributes["message.id"] == 7
    assert [len(spans.named(name)[0].links) for name in ("unlinked", "garbled")] == [0, 0]


async def test_tracing_off_installs_nothing(database_url, spans):
    async with traced(database_url) as app:  # on, then off again: it removes what it added
        assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert len(app.state.engine.sync_engine.dispatch.before_cursor_execute) == 0
    spans.exporter.clear()
    async with running_app(make_settings(database_url)) as app, client_for(app) as http:
        member = await make_member(http)
        await http.get("/api/v1/users/me", headers=member.headers)
        assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
        assert len(app.state.engine.sync_engine.dispatch.before_cursor_execute) == 0
    assert spans.finished() == []  # a provider exists in this process, yet nothing is traced
