"""GET /metrics: families, labels by route template, protection, and what the API counts.

The metrics are process-wide counters, so each test compares a reading before and after.
"""

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from backend.app.core.metrics import RequestMetrics
from backend.app.core.middleware import RequestContextMiddleware
from tests.assertions import assert_error
from tests.conftest import client_for, make_settings, running_app
from tests.factories import bill_user, make_admin, make_lead, make_member, unique_email
from tests.metrics import families, value

# example:lead start
LEAD_ROUTE = "/api/v1/leads/{lead_id}"
# example:lead end
USER_ROUTE = "/api/v1/users/{user_id:int}"
PRODUCTION = {
    "environment": "production",
    "secret_key": "p" * 40,
    "billing_provider": "stripe",
    "stripe_secret_key": "sk_test_unused",
    "stripe_webhook_secret": "whsec_unused",
}


async def scrape(http: httpx.AsyncClient, **headers: str) -> str:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_a_request_is_counted_under_its_route_template(client, app):
    admin = await make_admin(app, client)
    labels = {"method": "PATCH", "route": USER_ROUTE, "status": "4xx"}
    before = await scrape(client)
    response = await client.patch("/api/v1/users/123", json={}, headers=admin.headers)
    assert response.status_code == 404
    after = await scrape(client)
    assert (
        value(after, "http_requests_total", **labels)
        == value(before, "http_requests_total", **labels) + 1
    )
    count = "http_request_duration_seconds_count"
    assert value(after, count, **labels) == value(before, count, **labels) + 1
    assert "/api/v1/users/123" not in after


# example:lead start
async def test_each_status_class_and_method_has_its_own_series(client):
    member = await make_member(client)
    lead = await make_lead(client, member)
    ok = {"method": "GET", "route": LEAD_ROUTE, "status": "2xx"}
    deleted = {"method": "DELETE", "route": LEAD_ROUTE, "status": "2xx"}
    before = await scrape(client)
    await client.get(f"/api/v1/leads/{lead['id']}", headers=member.headers)
    await client.delete(f"/api/v1/leads/{lead['id']}", headers=member.headers)
    after = await scrape(client)
    for labels in (ok, deleted):
        assert value(after, "http_requests_total", **labels) == (
            value(before, "http_requests_total", **labels) + 1
        )


# example:lead end


async def test_requests_no_route_matched_share_one_label(client):
    labels = {"method": "GET", "route": "unmatched", "status": "4xx"}
    before = await scrape(client)
    for path in ("/no-such-page/1", "/no-such-page/2", "/api/v1/nothing-here"):
        assert (await client.get(path)).status_code == 404
    after = await scrape(client)
    assert value(after, "http_requests_total", **labels) == (
        value(before, "http_requests_total", **labels) + 3
    )
    assert "no-such-page" not in after


async def test_the_families_and_their_labels(client):
    await client.get("/health")
    found = families(await scrape(client))
    request_labels = {"method", "route", "status"}
    assert found["http_requests"] == {"type:counter", *request_labels}
    assert found["http_request_duration_seconds"] == {"type:histogram", *request_labels}
    assert found["http_requests_in_progress"] == {"type:gauge"}
    assert found["db_pool_connections"] == {"type:gauge", "state"}
    for name in ("sms_sends", "sms_send_failures", "payments", "rate_limit_refusals"):
        assert found[name] == {"type:counter"} | found[name]  # declared, children made on use
    assert found["sms_send_duration_seconds"] >= {"type:histogram"}
    assert found["sms_outbox_messages"] >= {"type:gauge"}
    assert found["login_failures"] == {"type:counter"}


async def test_the_pool_is_read_at_scrape_time(client, app):
    async with app.state.engine.connect() as held:
        await held.exec_driver_sql("SELECT 1")
        during = await scrape(client)
    after = await scrape(client)
    assert value(during, "db_pool_connections", state="in_use") == 1
    assert value(after, "db_pool_connections", state="in_use") == 0
    assert value(after, "db_pool_connections", state="idle") >= 1
    assert value(after, "db_pool_connections", state="overflow") == 0


async def test_failed_logins_and_refusals_are_counted(client):
    email = unique_email()
    await client.post("/api/v1/auth/register", json={"email": email, "password": "right-password"})
    before = await scrape(client)
    form = {"username": email, "password": "wrong-password"}
    statuses = [(await client.post("/api/v1/auth/token", data=form)).status_code for _ in range(12)]
    after = await scrape(client)
    assert statuses == [401] * 10 + [429] * 2
    assert value(after, "login_failures_total") == value(before, "login_failures_total") + 10
    refused = "rate_limit_refusals_total"
    assert value(after, refused, limit="login") == value(before, refused, limit="login") + 2


async def test_payments_are_counted_by_final_state(stripe_client, stripe_app, stripe_fake):
    owner = await make_member(stripe_client)
    before = await scrape(stripe_client)
    for outcome in ("paid", "expired"):
        payment = await bill_user(stripe_app, owner)
        signed = stripe_fake.event(payment.provider_payment_id, outcome)
        for _ in range(2):  # a redelivery changes nothing, so counts nothing
            await stripe_client.post(
                "/api/v1/webhooks/stripe", content=signed.payload, headers=signed.headers
            )
    after = await scrape(stripe_client)
    for status in ("paid", "expired"):
        assert value(after, "payments_total", status=status) == (
            value(before, "payments_total", status=status) + 1
        )
    assert value(after, "payments_total", status="failed") == value(
        before, "payments_total", status="failed"
    )


async def test_metrics_are_not_in_the_openapi_schema(client):
    schema = (await client.get("/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_a_metrics_token_is_required_when_set(database_url):
    settings = make_settings(database_url, metrics_token="scrape-token-0123456789")
    async with running_app(settings) as app, client_for(app) as http:
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await scrape(http, Authorization="Bearer scrape-token-0123456789")
    assert_error(missing, 401, "unauthorized")
    assert_error(wrong, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "http_requests_total" in right


async def test_production_serves_metrics_only_with_a_token(postgresql_url):
    async with (
        running_app(make_settings(postgresql_url, **PRODUCTION)) as app,
        client_for(app) as http,
    ):
        assert_error(await http.get("/metrics"), 404, "not_found")
    settings = make_settings(postgresql_url, **PRODUCTION, metrics_token="t" * 32)
    async with running_app(settings) as app, client_for(app) as http:
        assert_error(await http.get("/metrics"), 401, "unauthorized")
        assert "http_requests_total" in await scrape(http, Authorization=f"Bearer {'t' * 32}")


async def test_metrics_can_be_turned_off(database_url):
    labels = {"method": "GET", "route": "/health", "status": "2xx"}
    async with running_app(make_settings(database_url)) as app, client_for(app) as http:
        before = await scrape(http)
    settings = make_settings(database_url, metrics_enabled=False)
    async with running_app(settings) as app, client_for(app) as http:
        await http.get("/health")
        assert_error(await http.get("/metrics"), 404, "not_found")
    async with running_app(make_settings(database_url)) as app, client_for(app) as http:
        after = await scrape(http)
    assert value(after, "http_requests_total", **labels) == value(
        before, "http_requests_total", **labels
    )


@pytest.mark.parametrize(
    ("path", "template"),
    [("/v1/items/5", "/v1/items/{item_id}"), ("/v2/items/7", "/v2/items/{item_id}")],
)
async def test_a_router_included_under_two_prefixes_keeps_each_template(path, template):
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app = FastAPI()
    for version in ("/v1", "/v2"):
        app.include_router(items, prefix=version)
    app.add_middleware(RequestContextMiddleware, metrics=RequestMetrics())
    labels = {"method": "GET", "route": template, "status": "2xx"}
    before = value(await _registry_text(), "http_requests_total", **labels)
    async with client_for(app) as http:
        for _ in range(2):  # the second time from the cache
            assert (await http.get(path)).status_code == 200
    assert value(await _registry_text(), "http_requests_total", **labels) == before + 2


async def _registry_text() -> str:
    from prometheus_client import REGISTRY, generate_latest

    return generate_latest(REGISTRY).decode()
