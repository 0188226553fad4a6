"""POST /api/v1/webhooks/stripe with events signed by the Stripe stand-in, on both backends.

The payments are about a user (any record is billable), made by the generic crud function as
an entity's endpoint would; the lead's own rules are in `test_lead_payments.py`.
"""

import asyncio
import json

import pytest
from sqlalchemy import func, select

from backend.app.models import Payment, StripeEvent
from tests.assertions import assert_error
from tests.factories import AuthedUser, bill_user, make_member

WEBHOOK = "/api/v1/webhooks/stripe"
BODY = {"amount": 5000, "currency": "usd"}


async def _billed(client, app) -> tuple[AuthedUser, dict]:
    owner = await make_member(client)
    payment = await bill_user(app, owner)
    return owner, {"id": payment.id, "provider_payment_id": payment.provider_payment_id}


async def _state(app, owner: AuthedUser) -> list[str]:
    """The statuses of the payments about `owner`, oldest first."""
    async with app.state.session_factory() as session:
        rows = await session.scalars(
            select(Payment.status)
            .where(Payment.subject_type == "users", Payment.subject_id == owner.id)
            .order_by(Payment.id)
        )
        return [str(status) for status in rows]


async def _post(client, signed):
    return await client.post(WEBHOOK, content=signed.payload, headers=signed.headers)


async def _event_rows(app) -> int:
    async with app.state.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(StripeEvent)) or 0


@pytest.mark.parametrize(
    ("outcomes", "final"),
    [
        (["async_failed"], "failed"),
        (["expired"], "expired"),
        (["completed_unpaid"], "pending"),
        (["completed_unpaid", "async_succeeded"], "paid"),
        (["completed_unpaid", "async_failed"], "failed"),
    ],
)
async def test_each_event_type_moves_the_payment(
    stripe_client, stripe_app, stripe_fake, outcomes, final
):
    owner, payment = await _billed(stripe_client, stripe_app)
    for outcome in outcomes:
        signed = stripe_fake.event(payment["provider_payment_id"], outcome)
        assert (await _post(stripe_client, signed)).status_code == 200
    assert await _state(stripe_app, owner) == [final]


@pytest.mark.parametrize(
    ("first", "late"), [("paid", "expired"), ("expired", "paid"), ("async_failed", "paid")]
)
async def test_final_statuses_never_change(stripe_client, stripe_app, stripe_fake, first, late):
    owner, payment = await _billed(stripe_client, stripe_app)
    session_id = payment["provider_payment_id"]
    await _post(stripe_client, stripe_fake.event(session_id, first))
    before = await _state(stripe_app, owner)
    response = await _post(stripe_client, stripe_fake.event(session_id, late))
    assert response.status_code == 200
    assert await _state(stripe_app, owner) == before


async def test_a_replayed_event_changes_nothing(stripe_client, stripe_fake, stripe_app):
    owner, payment = await _billed(stripe_client, stripe_app)
    signed = stripe_fake.event(payment["provider_payment_id"], "paid")
    assert (await _post(stripe_client, signed)).status_code == 200
    assert (await _post(stripe_client, stripe_fake.resend(signed.id))).status_code == 200
    assert await _state(stripe_app, owner) == ["paid"]
    assert await _event_rows(stripe_app) == 1


async def test_concurrent_deliveries_of_one_event_apply_it_once(
    stripe_client, stripe_fake, stripe_app
):
    owner, payment = await _billed(stripe_client, stripe_app)
    signed = stripe_fake.event(payment["provider_payment_id"], "paid")
    responses = await asyncio.gather(*(_post(stripe_client, signed) for _ in range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert await _state(stripe_app, owner) == ["paid"]
    assert await _event_rows(stripe_app) == 1


@pytest.mark.parametrize(
    "forge",
    ["bad_secret", "stale", "no_header", "tampered", "garbage_header", "not_json"],
)
async def test_a_forged_or_stale_signature_is_400_and_changes_nothing(
    stripe_client, stripe_fake, stripe_app, forge
):
    owner, payment = await _billed(stripe_client, stripe_app)
    session_id = payment["provider_payment_id"]
    signed = stripe_fake.event(
        session_id, "paid", bad_signature=forge == "bad_secret", age=301 if forge == "stale" else 0
    )
    payload, headers = signed.payload, dict(signed.headers)
    if forge == "no_header":
        del headers["Stripe-Signature"]
    elif forge == "tampered":
        payload = payload.replace('"payment_status": "paid"', '"payment_status": "paid" ')
    elif forge == "garbage_header":
        headers["Stripe-Signature"] = "t=abc,v1"
    elif forge == "not_json":
        payload = "not json"
        headers["Stripe-Signature"] = stripe_fake.sign_raw(payload)
    response = await stripe_client.post(WEBHOOK, content=payload, headers=headers)
    assert_error(response, 400, "invalid_signature")
    assert await _state(stripe_app, owner) == ["pending"]
    assert await _event_rows(stripe_app) == 0


async def test_a_signature_just_inside_the_tolerance_is_accepted(
    stripe_client, stripe_app, stripe_fake
):
    owner, payment = await _billed(stripe_client, stripe_app)
    signed = stripe_fake.event(payment["provider_payment_id"], "paid", age=280)
    assert (await _post(stripe_client, signed)).status_code == 200
    assert await _state(stripe_app, owner) == ["paid"]


async def test_unknown_event_types_are_acknowledged_and_ignored(
    stripe_client, stripe_app, stripe_fake
):
    owner, _ = await _billed(stripe_client, stripe_app)
    event = {
        "id": "evt_unknown_1",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    response = await _post(stripe_client, stripe_fake.sign(event))
    assert response.status_code == 200
    assert response.json() == {"received": True}
    assert await _state(stripe_app, owner) == ["pending"]


async def test_events_for_unknown_or_mismatched_sessions_are_ignored(
    stripe_client, stripe_app, stripe_fake
):
    owner, payment = await _billed(stripe_client, stripe_app)
    session = dict(stripe_fake.sessions[payment["provider_payment_id"]])
    for reference, session_id in [("999999", session["id"]), (str(payment["id"]), "cs_other")]:
        event = {
            "id": f"evt_{reference}_{session_id}",
            "object": "event",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    **session,
                    "id": session_id,
                    "client_reference_id": reference,
                    "payment_status": "paid",
                }
            },
        }
        assert (await _post(stripe_client, stripe_fake.sign(event))).status_code == 200
    assert await _state(stripe_app, owner) == ["pending"]


async def test_the_webhook_is_public_and_documented(stripe_client):
    schema = (await stripe_client.get("/openapi.json")).json()
    operation = schema["paths"][WEBHOOK]["post"]
    assert "security" not in operation
    assert "invalid_signature" in operation["responses"]["400"]["description"]
    assert json.dumps(operation).count("Stripe-Signature") >= 1
