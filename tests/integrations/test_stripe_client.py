"""The Stripe Checkout client against the local stand-in, over real HTTP (the official SDK)."""

import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from pydantic import ValidationError

from backend.app.core.circuit import CircuitBreaker
from backend.app.core.config import Settings
from backend.app.core.errors import CircuitOpenError, PaymentProviderError, PaymentRejectedError
from backend.app.integrations.stripe import (
    CheckoutRequest,
    FakeCheckout,
    StripeCheckout,
    create_checkout_provider,
)
from tests.conftest import make_settings
from tests.fakes.stripe_fake import FakeStripe, Fault

SQLITE = "sqlite+aiosqlite:///:memory:"


@asynccontextmanager
async def _client(fake: FakeStripe, **overrides) -> AsyncIterator[StripeCheckout]:
    """A client of the stand-in with quick retries, closed when the block ends."""
    values = {
        "secret_key": fake.secret_key,
        "api_base_url": fake.base_url,
        "success_url": "https://app.example.com/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example.com/canceled",
        "timeout": 2.0,
        "max_retries": 2,
        "backoff_initial": 0.05,
        "circuit": CircuitBreaker(name="Stripe", failure_threshold=1000, open_seconds=30),
        **overrides,
    }
    client = StripeCheckout(**values)
    try:
        yield client
    finally:
        await client.aclose()


def _request(payment_id: int = 7, **overrides) -> CheckoutRequest:
    values = {
        "payment_id": payment_id,
        "subject_type": "leads",
        "subject_id": 42,
        "amount": 5000,
        "currency": "usd",
        "description": "Onboarding",
        "idempotency_key": f"payment-{payment_id}-123",
        **overrides,
    }
    return CheckoutRequest(**values)


async def test_creates_a_checkout_session_with_our_parameters(stripe_fake):
    async with _client(stripe_fake) as client:
        session = await client.create_session(_request())
    assert session.id.startswith("cs_test_")
    assert session.url == f"{stripe_fake.base_url}/c/pay/{session.id}"
    [create] = stripe_fake.creates()
    assert create.headers["authorization"] == f"Bearer {stripe_fake.secret_key}"
    assert create.headers["idempotency-key"] == "payment-7-123"
    assert create.params == {
        "mode": "payment",
        "line_items": [
            {
                "quantity": "1",
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "5000",
                    "product_data": {"name": "Onboarding"},
                },
            }
        ],
        "success_url": "https://app.example.com/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example.com/canceled",
        "client_reference_id": "7",
        "metadata": {"payment_id": "7", "subject_type": "leads", "subject_id": "42"},
    }
    stored = stripe_fake.sessions[session.id]
    assert (stored["amount_total"], stored["currency"], stored["status"]) == (5000, "usd", "open")


async def test_a_session_without_description_is_named_after_the_payment(stripe_fake):
    async with _client(stripe_fake) as client:
        await client.create_session(_request(payment_id=9, description=None))
    [create] = stripe_fake.creates()
    assert create.params["line_items"][0]["price_data"]["product_data"] == {"name": "Payment 9"}


async def test_a_lost_answer_is_retried_with_the_same_key_and_makes_one_session(stripe_fake):
    # Stripe made the session, but the answer was a 500: the retry must be a replay.
    stripe_fake.faults.append(Fault(status=500, accept=True))
    async with _client(stripe_fake) as client:
        session = await client.create_session(_request())
    creates = stripe_fake.creates()
    assert [c.headers["idempotency-key"] for c in creates] == ["payment-7-123"] * 2
    assert list(stripe_fake.sessions) == [session.id]


async def test_a_500_before_any_work_is_retried_and_succeeds(stripe_fake):
    stripe_fake.faults.append(Fault(status=500))
    async with _client(stripe_fake) as client:
        session = await client.create_session(_request())
    assert len(stripe_fake.creates()) == 2
    assert list(stripe_fake.sessions) == [session.id]


async def test_a_dropped_connection_is_retried(stripe_fake):
    stripe_fake.faults.append(Fault(drop=True, accept=True))
    async with _client(stripe_fake) as client:
        session = await client.create_session(_request())
    assert len(stripe_fake.creates()) == 2
    assert list(stripe_fake.sessions) == [session.id]


async def test_a_plain_429_is_retried_with_backoff(stripe_fake):
    stripe_fake.faults.append(Fault(status=429))
    async with _client(stripe_fake) as client:
        await client.create_session(_request())
    assert len(stripe_fake.creates()) == 2
    assert len(stripe_fake.sessions) == 1


async def test_stripe_should_retry_false_is_obeyed(stripe_fake):
    stripe_fake.faults.append(Fault(status=503, should_retry=False))
    async with _client(stripe_fake) as client:
        with pytest.raises(PaymentProviderError) as caught:
            await client.create_session(_request())
    assert caught.value.code == "integration_error"
    assert len(stripe_fake.creates()) == 1


async def test_an_open_circuit_refuses_at_once_without_calling_stripe(stripe_fake):
    now = [1000.0]
    circuit = CircuitBreaker(
        name="Stripe", failure_threshold=2, open_seconds=30, clock=lambda: now[0]
    )
    stripe_fake.faults.append(Fault(status=503, count=2))
    async with _client(stripe_fake, max_retries=0, circuit=circuit) as client:
        for _ in range(2):
            with pytest.raises(PaymentProviderError):
                await client.create_session(_request())
        with pytest.raises(CircuitOpenError) as caught:
            await client.create_session(_request())
        assert caught.value.retry_after == 30
        assert len(stripe_fake.creates()) == 2  # the third call never reached Stripe

        now[0] += 31  # the pause is over and Stripe is back: one success closes the circuit
        assert (await client.create_session(_request())).id.startswith("cs_")
        await client.create_session(_request(payment_id=8))
    assert len(stripe_fake.creates()) == 4


async def test_a_persistent_outage_gives_up_after_the_configured_retries(stripe_fake):
    stripe_fake.faults.append(Fault(status=503, count=10))
    async with _client(stripe_fake, max_retries=2) as client:
        with pytest.raises(PaymentProviderError):
            await client.create_session(_request())
    assert len(stripe_fake.creates()) == 3
    assert stripe_fake.sessions == {}


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"amount": 10}, "amount", "amount_too_small"),
        ({"currency": "xyz"}, "currency", "parameter_invalid_string"),
    ],
)
async def test_validation_errors_are_not_retried_and_name_the_field(
    stripe_fake, overrides, field, code
):
    async with _client(stripe_fake) as client:
        with pytest.raises(PaymentRejectedError) as caught:
            await client.create_session(_request(**overrides))
    assert caught.value.code == "payment_rejected"
    assert caught.value.details == [
        {
            "loc": ["body", field],
            "msg": f"Refused by the payment provider ({code}).",
            "type": "value_error",
        }
    ]
    assert len(stripe_fake.creates()) == 1


async def test_a_wrong_secret_key_is_an_integration_error_without_retry(stripe_fake):
    async with _client(stripe_fake, secret_key="sk_test_wrong") as client:
        with pytest.raises(PaymentProviderError):
            await client.create_session(_request())
    assert len(stripe_fake.creates()) == 1


async def test_the_same_key_with_other_parameters_is_refused_not_retried(stripe_fake):
    async with _client(stripe_fake) as client:
        await client.create_session(_request())
        with pytest.raises(PaymentProviderError):
            await client.create_session(_request(amount=6000))
    assert len(stripe_fake.creates()) == 2
    assert len(stripe_fake.sessions) == 1


async def test_a_slow_stripe_times_out(stripe_fake):
    stripe_fake.faults.append(Fault(delay=3.0))
    started = time.monotonic()
    async with _client(stripe_fake, timeout=0.3, max_retries=0) as client:
        with pytest.raises(PaymentProviderError):
            await client.create_session(_request())
    assert 0.3 <= time.monotonic() - started < 1.5
    assert len(stripe_fake.creates()) == 1


async def test_a_slow_first_try_is_replayed_not_duplicated(stripe_fake):
    # The first try times out while Stripe still works on it; the retry must not make a
    # second session (it gets 409 while in flight, then the replay).
    stripe_fake.faults.append(Fault(delay=0.6))
    async with _client(stripe_fake, timeout=0.4, max_retries=4) as client:
        session = await client.create_session(_request())
    assert list(stripe_fake.sessions) == [session.id]
    keys = {c.headers["idempotency-key"] for c in stripe_fake.creates()}
    assert keys == {"payment-7-123"}


async def test_connection_refused_is_an_integration_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = StripeCheckout(
        secret_key="sk_test_x",
        api_base_url=f"http://127.0.0.1:{port}",
        success_url="https://a.example/s",
        cancel_url="https://a.example/c",
        timeout=1.0,
        max_retries=1,
        backoff_initial=0.01,
        circuit=CircuitBreaker(name="Stripe", failure_threshold=1000, open_seconds=30),
    )
    try:
        with pytest.raises(PaymentProviderError):
            await client.create_session(_request())
    finally:
        await client.aclose()


async def test_the_fake_provider_hands_out_pages_of_this_app():
    provider = create_checkout_provider(make_settings(SQLITE, public_base_url="http://h:9/"))
    assert isinstance(provider, FakeCheckout)
    first = await provider.create_session(_request())
    second = await provider.create_session(_request())
    await provider.aclose()
    assert first.id.startswith("cs_test_")
    assert first.id != second.id
    assert first.url == f"http://h:9/dev/checkout/{first.id}"


def test_the_factory_builds_the_stripe_client(stripe_fake):
    settings = make_settings(
        SQLITE, billing_provider="stripe", stripe_secret_key="sk_test_x", stripe_api_base_url="x"
    )
    assert isinstance(create_checkout_provider(settings), StripeCheckout)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"billing_provider": "stripe"}, "needs STRIPE_SECRET_KEY"),
        ({"environment": "production"}, "BILLING_PROVIDER=fake is for development"),
        (
            {"environment": "production", "billing_provider": "stripe", "stripe_secret_key": "sk"},
            "STRIPE_WEBHOOK_SECRET must be set",
        ),
    ],
)
def test_settings_refuse_unsafe_billing(values, problem):
    production = {
        "secret_key": "s" * 40,
        "database_url": "postgresql+asyncpg://u@h/db",
        "twilio_auth_token": "t",
    }
    base = production if values.get("environment") == "production" else {}
    with pytest.raises(ValidationError, match=problem):
        Settings(_env_file=None, **{"database_url": SQLITE, **base, **values})


def test_production_accepts_stripe_with_its_secrets():
    settings = Settings(
        _env_file=None,
        environment="production",
        secret_key="s" * 40,
        database_url="postgresql+asyncpg://u@h/db",
        billing_provider="stripe",
        stripe_secret_key="sk_live_x",
        stripe_webhook_secret="whsec_live_x",
    )
    assert settings.billing_provider == "stripe"


def test_an_empty_webhook_secret_reads_as_unset():
    dev = make_settings(SQLITE, stripe_webhook_secret="")
    assert dev.stripe_webhook_secret.get_secret_value().startswith("whsec_dev_")
    with pytest.raises(ValidationError, match="STRIPE_WEBHOOK_SECRET must be set"):
        Settings(
            _env_file=None,
            environment="production",
            secret_key="s" * 40,
            database_url="postgresql+asyncpg://u@h/db",
            billing_provider="stripe",
            stripe_secret_key="sk_live_x",
            stripe_webhook_secret="",
        )
