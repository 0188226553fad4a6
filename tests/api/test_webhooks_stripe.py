"""POST /api/v1/webhooks/stripe with events signed by the Stripe stand-in, on both backends."""

import asyncio
import json

import pytest
from sqlalchemy import func, select

from backend.app.models import StripeEvent
from tests.assertions import assert_error
from tests.factories import make_lead, make_member

WEBHOOK = "/api/v1/webhooks/stripe"
BODY = {"amount": 5000, "currency": "usd"}


async def _billed_lead(client, owner=None):
    owner = owner or await make_member(client)
    lead = await make_lead(client, owner)
    response = await client.post(
        f"/api/v1/leads/{lead['id']}/payments", json=BODY, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    return owner, lead, response.json()


async def _state(client, owner, lead):
    """The lead's status and its payments' statuses, oldest first."""
    lead_now = await client.get(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
    page = await client.get(f"/api/v1/leads/{lead['id']}/payments", headers=owner.headers)
    return lead_now.json()["status"], [p["status"] for p in page.json()["items"][::-1]]


async def _post(client, signed):
    return await client.post(WEBHOOK, content=signed.payload, headers=signed.headers)


async def _event_rows(app) -> int:
    async with app.state.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(StripeEvent)) or 0


async def test_a_paid_session_pays_the_payment_and_wins_the_lead(stripe_client, stripe_fake):
    owner, lead, payment = await _billed_lead(stripe_client)
    response = await _post(stripe_client, stripe_fake.event(payment["provider_payment_id"], "paid"))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True}
    assert await _state(stripe_client, owner, lead) == ("won", ["paid"])


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
async def test_each_event_type_moves_the_payment(stripe_client, stripe_fake, outcomes, final):
    owner, lead, payment = await _billed_lead(stripe_client)
    for outcome in outcomes:
        signed = stripe_fake.event(payment["provider_payment_id"], outcome)
        assert (await _post(stripe_client, signed)).status_code == 200
    lead_status, statuses = await _state(stripe_client, owner, lead)
    assert statuses == [final]
    assert lead_status == ("won" if final == "paid" else "new")


@pytest.mark.parametrize(
    ("first", "late"), [("paid", "expired"), ("expired", "paid"), ("async_failed", "paid")]
)
async def test_final_statuses_never_change(stripe_client, stripe_fake, first, late):
    owner, lead, payment = await _billed_lead(stripe_client)
    session_id = payment["provider_payment_id"]
    await _post(stripe_client, stripe_fake.event(session_id, first))
    before = await _state(stripe_client, owner, lead)
    response = await _post(stripe_client, stripe_fake.event(session_id, late))
    assert response.status_code == 200
    assert await _state(stripe_client, owner, lead) == before


async def test_a_replayed_event_changes_nothing(stripe_client, stripe_fake, stripe_app):
    owner, lead, payment = await _billed_lead(stripe_client)
    signed = stripe_fake.event(payment["provider_payment_id"], "paid")
    assert (await _post(stripe_client, signed)).status_code == 200
    # The user moves the lead on; a redelivery of the same event must not move it back.
    await stripe_client.patch(
        f"/api/v1/leads/{lead['id']}", json={"status": "contacted"}, headers=owner.headers
    )
    assert (await _post(stripe_client, stripe_fake.resend(signed.id))).status_code == 200
    assert await _state(stripe_client, owner, lead) == ("contacted", ["paid"])
    assert await _event_rows(stripe_app) == 1


async def test_concurrent_deliveries_of_one_event_apply_it_once(
    stripe_client, stripe_fake, stripe_app
):
    owner, lead, payment = await _billed_lead(stripe_client)
    signed = stripe_fake.event(payment["provider_payment_id"], "paid")
    responses = await asyncio.gather(*(_post(stripe_client, signed) for _ in range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert await _state(stripe_client, owner, lead) == ("won", ["paid"])
    assert await _event_rows(stripe_app) == 1


@pytest.mark.parametrize(
    "forge",
    ["bad_secret", "stale", "no_header", "tampered", "garbage_header", "not_json"],
)
async def test_a_forged_or_stale_signature_is_400_and_changes_nothing(
    stripe_client, stripe_fake, stripe_app, forge
):
    owner, lead, payment = await _billed_lead(stripe_client)
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
    assert await _state(stripe_client, owner, lead) == ("new", ["pending"])
    assert await _event_rows(stripe_app) == 0


async def test_a_signature_just_inside_the_tolerance_is_accepted(stripe_client, stripe_fake):
    owner, lead, payment = await _billed_lead(stripe_client)
    signed = stripe_fake.event(payment["provider_payment_id"], "paid", age=280)
    assert (await _post(stripe_client, signed)).status_code == 200
    assert await _state(stripe_client, owner, lead) == ("won", ["paid"])


async def test_unknown_event_types_are_acknowledged_and_ignored(stripe_client, stripe_fake):
    owner, lead, _ = await _billed_lead(stripe_client)
    event = {
        "id": "evt_unknown_1",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    response = await _post(stripe_client, stripe_fake.sign(event))
    assert response.status_code == 200
    assert response.json() == {"received": True}
    assert await _state(stripe_client, owner, lead) == ("new", ["pending"])


async def test_events_for_unknown_or_mismatched_sessions_are_ignored(stripe_client, stripe_fake):
    owner, lead, payment = await _billed_lead(stripe_client)
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
    assert await _state(stripe_client, owner, lead) == ("new", ["pending"])


async def test_only_the_first_paid_payment_wins_the_lead(stripe_client, stripe_fake):
    owner, lead, first = await _billed_lead(stripe_client)
    second = (
        await stripe_client.post(
            f"/api/v1/leads/{lead['id']}/payments", json=BODY, headers=owner.headers
        )
    ).json()
    await _post(stripe_client, stripe_fake.event(first["provider_payment_id"], "paid"))
    await stripe_client.patch(
        f"/api/v1/leads/{lead['id']}", json={"status": "qualified"}, headers=owner.headers
    )
    await _post(stripe_client, stripe_fake.event(second["provider_payment_id"], "paid"))
    assert await _state(stripe_client, owner, lead) == ("qualified", ["paid", "paid"])


async def test_the_webhook_is_public_and_documented(stripe_client):
    schema = (await stripe_client.get("/openapi.json")).json()
    operation = schema["paths"][WEBHOOK]["post"]
    assert "security" not in operation
    assert "invalid_signature" in operation["responses"]["400"]["description"]
    assert json.dumps(operation).count("Stripe-Signature") >= 1
