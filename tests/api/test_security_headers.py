"""Security headers on every response: the app's answers and those middleware builds."""

import pytest

from backend.app.main import create_app
from backend.app.routers.docs import DOCS_CSP
from tests.assertions import assert_error
from tests.conftest import client_for, make_settings, running_app
from tests.factories import bill_user, make_member

MIB = 1024 * 1024
ALLOWED_ORIGIN = "https://app.example.com"
PRODUCTION_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:9/never-connected"


def assert_security_headers(response):
    """Assert the headers every response carries: no sniffing, no framing, no referrer."""
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def create_production_app(**overrides):
    """An app with settings that pass production's checks; its database is never reached."""
    settings = make_settings(
        PRODUCTION_DATABASE_URL,
        environment="production",
        secret_key="a-production-secret-of-forty-characters!",
        billing_provider="stripe",
        stripe_secret_key="sk_test_never_called",
        stripe_webhook_secret="whsec_test_never_called",
        **overrides,
    )
    return create_app(settings)


async def test_a_200_carries_the_security_headers(client):
    member = await make_member(client)
    for response in (
        await client.get("/health"),
        await client.get("/api/v1/users/me", headers=member.headers),
    ):
        assert response.status_code == 200
        assert_security_headers(response)


async def test_a_404_carries_the_security_headers(client):
    response = await client.get("/api/v1/no-such-thing")
    assert_error(response, 404, "not_found")
    assert_security_headers(response)


async def test_a_413_built_by_middleware_carries_the_security_headers(client):
    body = b'{"email": "' + b"a" * MIB + b'"}'
    response = await client.post(
        "/api/v1/auth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    assert_security_headers(response)


async def test_a_500_built_by_middleware_carries_the_security_headers(database_url):
    async def explode() -> None:
        raise RuntimeError("boom")

    async with running_app(make_settings(database_url)) as app, client_for(app) as http:
        app.add_api_route("/test-only/explode", explode)
        response = await http.get("/test-only/explode")
    assert_error(response, 500, "internal_error")
    assert_security_headers(response)


async def test_a_refused_cors_preflight_carries_the_security_headers(database_url):
    settings = make_settings(database_url, cors_origins=[ALLOWED_ORIGIN])
    async with running_app(settings) as app, client_for(app) as http:
        response = await http.options(
            "/api/v1/users/me",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
        )
    assert_error(response, 400, "bad_request")
    assert_security_headers(response)


async def test_outside_production_there_is_no_hsts(client):
    response = await client.get("/health")
    assert "strict-transport-security" not in response.headers


async def test_production_sends_hsts_on_every_response():
    # No lifespan: /health and an unknown route touch neither the database nor Stripe.
    async with client_for(create_production_app()) as http:
        for response in (await http.get("/health"), await http.get("/no-such-thing")):
            assert response.headers["strict-transport-security"] == "max-age=31536000"
            assert_security_headers(response)


async def test_the_hsts_max_age_is_a_setting():
    async with client_for(create_production_app(hsts_max_age_seconds=600)) as http:
        response = await http.get("/health")
    assert response.headers["strict-transport-security"] == "max-age=600"


async def test_the_token_response_is_never_cached(client):
    member = await make_member(client)
    response = await client.post(
        "/api/v1/auth/token", data={"username": member.email, "password": "correct horse battery"}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert_security_headers(response)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_keep_their_own_csp_and_refuse_framing(client, page):
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DOCS_CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_fake_checkout_page_has_a_strict_csp_and_refuses_framing(client, app):
    owner = await make_member(client)
    payment = await bill_user(app, owner)
    page = await client.get(f"/dev/checkout/{payment.provider_payment_id}")
    assert page.status_code == 200
    assert_security_headers(page)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["script-src"].startswith("'sha256-")  # only its own script: no inline injection
    assert "unsafe-inline" not in page.headers["content-security-policy"]
