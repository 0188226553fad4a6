"""What the SMS worker tells an operator: metrics, spans, error reports (Twilio stand-in)."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY, generate_latest

from backend.app.core.error_reporting import start_error_reporting, stop_error_reporting
from backend.app.core.metrics import serve_worker_metrics
from backend.app.core.tracing import current_trace_context, start_tracing
from backend.app.models import Message
from backend.app.worker import SmsWorker, Worker
from tests.conftest import client_for, running_app
from tests.factories import AuthedUser, make_member, queue_text
from tests.fakes.sentry_fake import running_sentry
from tests.fakes.twilio_fake import Fault
from tests.fakes.twilio_fixtures import twilio_client, twilio_settings
from tests.metrics import value
from tests.server import free_port
from tests.spans import UNUSED_OTLP_ENDPOINT

PHONE = "+14155550100"
OPTED_OUT_PHONE = "+15005550004"  # Twilio's 21610 test number


def reading() -> str:
    return generate_latest(REGISTRY).decode()


async def _queue(app, owner: AuthedUser, phone: str, body: str = "Hello", **extra) -> dict:
    message = await queue_text(app, owner, phone, body, **extra)
    return {"id": message.id}


def _worker(app, settings) -> SmsWorker:
    return SmsWorker(
        settings=settings, session_factory=app.state.session_factory, sender=twilio_client(settings)
    )


def _loop(app, settings) -> Worker:
    """The worker loop with the SMS delivery alone."""
    deliveries = [_worker(app, settings)]
    return Worker(
        settings=settings, session_factory=app.state.session_factory, deliveries=deliveries
    )


def _delta(before: str, after: str, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_each_try_is_counted_by_outcome_and_error_code(
    client, app, twilio_fake, database_url
):
    owner = await make_member(client)
    await _queue(app, owner, PHONE)
    await _queue(app, owner, OPTED_OUT_PHONE)
    before = reading()
    assert await _worker(app, twilio_settings(twilio_fake, database_url)).run_once() == 2
    after = reading()
    sends = "sms_sends_total"
    assert _delta(before, after, sends, provider="twilio", outcome="sent") == 1
    assert _delta(before, after, sends, provider="twilio", outcome="failed") == 1
    failures = "sms_send_failures_total"
    assert _delta(before, after, failures, provider="twilio", error_code="21610") == 1
    timed = "sms_send_duration_seconds_count"
    assert _delta(before, after, timed, provider="twilio") == 2


async def test_a_try_to_retry_is_counted_with_its_code(client, app, twilio_fake, database_url):
    owner = await make_member(client)
    await _queue(app, owner, PHONE)
    twilio_fake.faults.append(Fault(status=429, code=20429, retry_after="0", count=5))
    settings = twilio_settings(twilio_fake, database_url, twilio_max_retries=0)
    before = reading()
    assert await _worker(app, settings).run_once() == 1
    after = reading()
    assert _delta(before, after, "sms_sends_total", provider="twilio", outcome="retry") == 1
    failures = "sms_send_failures_total"
    assert _delta(before, after, failures, provider="twilio", error_code="20429") == 1


async def test_the_outbox_depth_is_published_by_status(client, app, twilio_fake, database_url):
    owner = await make_member(client)
    later = datetime.now(UTC) + timedelta(hours=1)
    await _queue(app, owner, PHONE, send_at=later)
    for body in ("one", "two"):
        await _queue(app, owner, PHONE, body)
    settings = twilio_settings(twilio_fake, database_url)
    await _loop(app, settings).publish_outbox_depth_if_due()
    waiting = reading()
    await _worker(app, settings).run_once()
    await _loop(app, settings).publish_outbox_depth_if_due()
    drained = reading()
    depth = "sms_outbox_messages"
    assert [value(waiting, depth, status=s) for s in ("scheduled", "queued", "sending")] == [
        1,
        2,
        0,
    ]
    assert [value(drained, depth, status=s) for s in ("scheduled", "queued", "sending")] == [
        1,
        0,
        0,
    ]


async def test_the_worker_serves_its_own_metrics_port():
    port = free_port()
    with serve_worker_metrics("127.0.0.1", port):
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert "sms_sends_total" in response.text
    with pytest.raises(httpx.ConnectError):  # closed with the block
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


async def test_an_error_that_ends_the_loop_is_reported_to_sentry(
    client, app, twilio_fake, database_url
):
    owner = await make_member(client)
    await _queue(app, owner, PHONE)
    # A success without a message sid: the client cannot read it, nothing handles the error.
    twilio_fake.faults.append(Fault(status=201))
    with running_sentry() as sentry:
        settings = twilio_settings(twilio_fake, database_url, sentry_dsn=sentry.dsn)
        assert start_error_reporting(settings)
        try:
            stop = asyncio.Event()
            with pytest.raises(KeyError):
                await _loop(app, settings).run(stop)
        finally:
            stop_error_reporting()
        [event] = sentry.events()
    assert event["tags"]["component"] == "worker"
    assert [e["type"] for e in event["exception"]["values"]] == ["KeyError"]
    assert PHONE not in sentry.raw()


async def test_each_send_is_a_span_with_its_http_calls_inside(
    client, app, twilio_fake, database_url, spans
):
    owner = await make_member(client)
    queued = await _queue(app, owner, PHONE)
    twilio_fake.faults.append(Fault(status=500, accept=True))  # then a lookup before a retry
    settings = twilio_settings(
        twilio_fake,
        database_url,
        otel_exporter_otlp_endpoint=UNUSED_OTLP_ENDPOINT,
        sms_retry_base_seconds=0.05,
        sms_retry_max_seconds=0.1,
    )
    tracing = start_tracing(settings, default_service_name="worker")
    assert tracing is not None
    try:
        worker = _worker(app, settings)
        assert await worker.run_once() == 1
        await asyncio.sleep(0.2)
        assert await worker.run_once() == 1
    finally:
        tracing.close()
    sends = spans.named("sms.send")
    assert len(sends) == 2
    assert {s.attributes["message.id"] for s in sends} == {queued["id"]}
    assert all(s.parent is None and s.kind is SpanKind.CONSUMER for s in sends)
    calls = [s for s in spans.finished() if s.kind is SpanKind.CLIENT and s.name in ("POST", "GET")]
    assert sorted(s.name for s in calls) == ["GET", "POST"]  # adopted, not sent again
    send_ids = {s.context.span_id for s in sends}
    assert {s.parent.span_id for s in calls} <= send_ids
    [lookup] = [s for s in calls if s.name == "GET"]
    assert PHONE not in str(lookup.attributes)
    assert "%2B1415" not in str(lookup.attributes)
    assert "To=REDACTED" in lookup.attributes["http.url"]
    sent_traces = {r.headers["traceparent"].split("-")[1] for r in twilio_fake.requests}
    assert sent_traces == {format(s.context.trace_id, "032x") for s in sends}


@pytest.mark.skipif(
    not hasattr(Message, "trace_context"),
    reason="needs the outbox's trace_context column (the lead's generic outbox adds it)",
)
async def test_a_send_links_to_the_request_that_queued_it(twilio_fake, database_url, spans):
    settings = twilio_settings(
        twilio_fake, database_url, otel_exporter_otlp_endpoint=UNUSED_OTLP_ENDPOINT
    )
    async with running_app(settings) as traced, client_for(traced) as http:
        owner = await make_member(http)
        with trace.get_tracer("tests").start_as_current_span("POST /api/v1/things/{id}/texts"):
            await _queue(traced, owner, PHONE)  # inside a request that queues a text
        [request] = spans.named("POST /api/v1/things/{id}/texts")
        assert await _worker(traced, settings).run_once() == 1
    [send] = spans.named("sms.send")
    assert [link.context.trace_id for link in send.links] == [request.context.trace_id]
    assert current_trace_context() is None
