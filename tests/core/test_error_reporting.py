"""Sentry: an unhandled error reaches the stand-in with its request id and without secrets."""

from sqlalchemy import text

from backend.app.core.deps import SessionDep
from backend.app.core.error_reporting import scrub_event
from tests.conftest import client_for, make_settings, running_app
from tests.fakes.sentry_fake import running_sentry

TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token-part.signature-part"
COOKIE = "session=cookie-value-9931"
PASSWORD = "hunter2-password-5511"
SECRET_VALUE = "secret-8472"


async def test_an_unhandled_error_is_reported_with_its_request_id_and_no_secrets(
    postgresql_url,
):
    async def cast(session: SessionDep) -> None:
        # PostgreSQL's answer quotes the value: invalid input syntax for type integer: "..."
        await session.execute(text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": SECRET_VALUE})

    with running_sentry() as sentry:
        settings = make_settings(postgresql_url, sentry_dsn=sentry.dsn)
        async with running_app(settings) as app, client_for(app) as http:
            app.add_api_route("/test-only/cast", cast, methods=["POST"])
            response = await http.post(
                "/test-only/cast?email=ada%40example.com",
                json={"password": PASSWORD},
                headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "Cookie": COOKIE,
                    "X-Request-ID": "report-me-1",
                },
            )
        assert response.status_code == 500
        # The lifespan's end flushed the report.
        [event] = sentry.events()
        raw = sentry.raw()
    assert event["tags"]["request_id"] == "report-me-1"
    assert event["tags"]["component"] == "api"
    assert event["environment"] == "test"
    types = [value["type"] for value in event["exception"]["values"]]
    assert types[-1] == "DBAPIError"
    assert any("sqlstate=22P02" in value["value"] for value in event["exception"]["values"])
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert any(frame["function"] == "cast" for frame in frames)
    assert all("vars" not in frame for frame in frames)
    for secret in (SECRET_VALUE, TOKEN, "secret-token-part", "cookie-value-9931", PASSWORD):
        assert secret not in raw
    assert "ada@example.com" not in raw
    assert "ada%40example.com" not in raw
    assert "request" not in event or set(event["request"]) <= {"method"}


async def test_nothing_is_reported_without_a_dsn(database_url):
    async def explode() -> None:
        raise RuntimeError("boom")

    with running_sentry() as sentry:
        async with running_app(make_settings(database_url)) as app, client_for(app) as http:
            app.add_api_route("/test-only/explode", explode)
            assert (await http.get("/test-only/explode")).status_code == 500
        assert sentry.envelopes == []


def test_the_scrubber_drops_request_user_breadcrumbs_and_local_variables():
    event = {
        "request": {
            "method": "POST",
            "url": "http://api/x?email=ada@example.com",
            "headers": {"Authorization": f"Bearer {TOKEN}", "Cookie": COOKIE},
            "cookies": {"session": "cookie-value-9931"},
            "data": {"password": PASSWORD},
            "query_string": "email=ada@example.com",
        },
        "user": {"email": "ada@example.com", "ip_address": "203.0.113.9"},
        "breadcrumbs": {"values": [{"message": f"login {PASSWORD}"}]},
        "exception": {
            "values": [
                {
                    "type": "RuntimeError",
                    "value": "boom",
                    "stacktrace": {"frames": [{"function": "f", "vars": {"password": PASSWORD}}]},
                }
            ]
        },
    }
    error = RuntimeError("boom")
    scrubbed = scrub_event(event, {"exc_info": (RuntimeError, error, None)})
    assert scrubbed["request"] == {"method": "POST"}
    assert "user" not in scrubbed
    assert "breadcrumbs" not in scrubbed
    [value] = scrubbed["exception"]["values"]
    assert value["value"] == "boom"  # a plain error's text stays, as in the logs
    assert value["stacktrace"]["frames"] == [{"function": "f"}]


def test_the_scrubber_hides_texts_it_cannot_match_to_the_chain():
    event = {"exception": {"values": [{"type": "A", "value": "x"}, {"type": "B", "value": "y"}]}}
    scrubbed = scrub_event(event, {"exc_info": (ValueError, ValueError("y"), None)})
    assert [v["value"] for v in scrubbed["exception"]["values"]] == ["[text hidden]"] * 2
