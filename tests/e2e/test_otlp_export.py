"""`serve` with OTEL_EXPORTER_OTLP_ENDPOINT exports its spans over OTLP/HTTP to a collector
stand-in, and the access log line carries the trace id of the request's span."""

import json
from pathlib import Path

import httpx
import pytest

from tests.fakes.otlp_fake import running_collector
from tests.server import serve, stop

pytestmark = pytest.mark.slow


def test_spans_reach_the_collector_and_the_logs_name_their_trace(
    empty_database_url: str, tmp_path: Path
) -> None:
    with running_collector() as collector:
        env = {
            "DATABASE_URL": empty_database_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.base_url,
            "LOG_LEVEL": "INFO",
        }
        with serve(env, tmp_path / "server.log") as server:
            with httpx.Client(base_url=server.base_url, timeout=10) as http:
                http.get("/health/ready", headers={"X-Request-ID": "exported-1"})
                http.get("/api/v1/audit-events", params={"actor": "Zebulon"})
            stop(server.process)  # the shutdown sends what is buffered
        [ready] = collector.named("GET /health/ready")
        [listed] = collector.named("GET /api/v1/audit-events")
    lines = [json.loads(line) for line in server.logs().splitlines() if line[:1] == "{"]
    [access] = [line for line in lines if line.get("request_id") == "exported-1"]
    assert ready.service == "lead-tracker-api"
    assert access["trace_id"] == ready.trace_id
    statements = [s for s in collector.spans if s.trace_id == ready.trace_id and s.name == "SELECT"]
    assert statements, "the readiness query is a span of the request's trace"
    assert listed.attributes["url.query"] == "actor=REDACTED"
