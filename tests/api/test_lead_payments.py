"""The Payments section of the contract through the API, on both backends.

`client` runs the default fake provider; `stripe_client` the Stripe client against the
local stand-in.
"""

import re

import pytest
from sqlalchemy import func, select

from backend.app.models import Payment
from tests.assertions import assert_error, error_locations
from tests.conftest import clean_database, client_for, running_app
from tests.factories import make_admin, make_lead, make_member
from tests.fakes.stripe_fake import Fault
from tests.fakes.stripe_fixtures import stripe_settings

PAYMENT_FIELDS = {
    "id",
    "lead_id",
    "amount",
    "currency",
    "description",
    "status",
    "checkout_url",
    "provider_payment_id",
    "created_at",
    "updated_at",
}
BODY = {"amount": 5000, "currency": "USD", "description": "Onboarding package"}


def _url(lead: dict) -> str:
    return f"/api/v1/leads/{lead['id']}/payments"


async def _payment_rows(app) -> int:
    async with app.state.session_factory() as session:
        return await session.scalar(select(func.count(Payment.id))) or 0


async def test_create_answers_a_pending_payment_with_a_checkout_url(client, app):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    response = await client.post(_url(lead), json=BODY, headers=owner.headers)
    assert response.status_code == 201, response.text
    payment = response.json()
    assert set(payment) == PAYMENT_FIELDS
    assert payment["lead_id"] == lead["id"]
    assert (payment["amount"], payment["currency"]) == (5000, "usd")
    assert payment["description"] == "Onboarding package"
    assert payment["status"] == "pending"
    assert re.fullmatch(r"cs_test_[0-9a-f]{32}", payment["provider_payment_id"])
    base = app.state.settings.public_base_url
    assert payment["checkout_url"] == f"{base}/dev/checkout/{payment['provider_payment_id']}"
    assert payment["created_at"].endswith(("Z", "+00:00"))
    assert "idempotent-replayed" not in response.headers


async def test_list_is_a_page_of_the_leads_payments_newest_first(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    other_lead = await make_lead(client, owner)
    ids = []
    for amount in (100, 200, 300):
        response = await client.post(
            _url(lead), json={"amount": amount, "currency": "eur"}, headers=owner.headers
        )
        ids.append(response.json()["id"])
    await client.post(_url(other_lead), json=BODY, headers=owner.headers)
    response = await client.get(_url(lead), params={"limit": 2}, headers=owner.headers)
    assert response.status_code == 200
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert [p["id"] for p in page["items"]] == ids[::-1][:2]
    assert page["items"][0]["description"] is None
    rest = await client.get(_url(lead), params={"offset": 2}, headers=owner.headers)
    assert [p["id"] for p in rest.json()["items"]] == ids[:1]
    bad = await client.get(_url(lead), params={"limit": 101}, headers=owner.headers)
    assert error_locations(bad) == [["query", "limit"]]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"amount": 0, "currency": "usd"}, ["body", "amount"]),
        ({"amount": 100_000_000, "currency": "usd"}, ["body", "amount"]),
        ({"amount": True, "currency": "usd"}, ["body", "amount"]),
        ({"amount": "500", "currency": "usd"}, ["body", "amount"]),
        ({"amount": 5.0, "currency": "usd"}, ["body", "amount"]),
        ({"currency": "usd"}, ["body", "amount"]),
        ({"amount": 500, "currency": "us"}, ["body", "currency"]),
        ({"amount": 500, "currency": "us1"}, ["body", "currency"]),
        ({"amount": 500, "currency": 840}, ["body", "currency"]),
        ({"amount": 500}, ["body", "currency"]),
        ({"amount": 500, "currency": "usd", "description": "x" * 501}, ["body", "description"]),
        ({"amount": 500, "currency": "usd", "status": "paid"}, ["body", "status"]),
    ],
)
async def test_invalid_bodies_are_422_and_store_nothing(client, app, body, location):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    response = await client.post(_url(lead), json=body, headers=owner.headers)
    assert error_locations(response) == [location]
    assert await _payment_rows(app) == 0


async def test_the_amount_bounds_are_accepted(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    for amount in (1, 99_999_999):
        response = await client.post(
            _url(lead), json={"amount": amount, "currency": "JPY"}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["currency"] == "jpy"


async def test_another_members_lead_is_404_and_an_admin_may_bill_any(client, app):
    owner = await make_member(client)
    stranger = await make_member(client)
    lead = await make_lead(client, owner)
    response = await client.post(_url(lead), json=BODY, headers=stranger.headers)
    assert_error(response, 404, "not_found")
    assert_error(await client.get(_url(lead), headers=stranger.headers), 404, "not_found")
    assert_error(
        await client.post("/api/v1/leads/999999/payments", json=BODY, headers=owner.headers),
        404,
        "not_found",
    )
    admin = await make_admin(app, client)
    assert (await client.post(_url(lead), json=BODY, headers=admin.headers)).status_code == 201
    listed = await client.get(_url(lead), headers=owner.headers)
    assert listed.json()["total"] == 1


async def test_payments_need_a_bearer_token(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    assert_error(await client.post(_url(lead), json=BODY), 401, "unauthorized")
    assert_error(await client.get(_url(lead)), 401, "unauthorized")


async def test_a_lead_with_payments_cannot_be_deleted(client):
    owner = await make_member(client)
    billed = await make_lead(client, owner)
    unbilled = await make_lead(client, owner)
    await client.post(_url(billed), json=BODY, headers=owner.headers)
    response = await client.delete(f"/api/v1/leads/{billed['id']}", headers=owner.headers)
    assert_error(response, 409, "lead_has_payments")
    assert (
        await client.get(f"/api/v1/leads/{billed['id']}", headers=owner.headers)
    ).status_code == 200
    deleted = await client.delete(f"/api/v1/leads/{unbilled['id']}", headers=owner.headers)
    assert deleted.status_code == 204


async def test_the_fake_checkout_page_is_served_but_not_in_the_schema(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    payment = (await client.post(_url(lead), json=BODY, headers=owner.headers)).json()
    page = await client.get(f"/dev/checkout/{payment['provider_payment_id']}")
    assert page.status_code == 200
    assert "Onboarding package" in page.text
    assert 'id="pay"' in page.text
    assert_error(await client.get("/dev/checkout/cs_test_unknown"), 404, "not_found")
    schema = (await client.get("/openapi.json")).json()
    assert not [path for path in schema["paths"] if path.startswith("/dev")]
    operation = schema["paths"]["/api/v1/leads/{lead_id}/payments"]["post"]
    described = " ".join(r["description"] for r in operation["responses"].values())
    for code in ("idempotency_key_reused", "idempotency_key_in_use", "integration_error"):
        assert code in described
    assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])


async def test_the_fake_checkout_pay_button_pays_through_the_signed_webhook(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    payment = (await client.post(_url(lead), json=BODY, headers=owner.headers)).json()
    session_id = payment["provider_payment_id"]
    response = await client.post(f"/dev/checkout/{session_id}/pay")
    assert response.status_code == 200, response.text
    assert response.json()["payment_status"] == "paid"
    assert response.json()["webhook_status"] == 200
    [stored] = (await client.get(_url(lead), headers=owner.headers)).json()["items"]
    assert stored["status"] == "paid"
    lead_now = await client.get(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
    assert lead_now.json()["status"] == "won"
    again = await client.post(f"/dev/checkout/{session_id}/fail")
    assert_error(again, 409, "conflict")


@pytest.mark.parametrize(("action", "status"), [("fail", "failed"), ("expire", "expired")])
async def test_the_fake_checkout_fail_and_expire_buttons(client, action, status):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    payment = (await client.post(_url(lead), json=BODY, headers=owner.headers)).json()
    response = await client.post(f"/dev/checkout/{payment['provider_payment_id']}/{action}")
    assert response.json()["payment_status"] == status
    lead_now = await client.get(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
    assert lead_now.json()["status"] == "new"


# --- against the Stripe stand-in -----------------------------------------------------------


async def test_stripe_create_opens_a_session_for_the_payment(stripe_client, stripe_fake):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    response = await stripe_client.post(_url(lead), json=BODY, headers=owner.headers)
    assert response.status_code == 201, response.text
    payment = response.json()
    session = stripe_fake.sessions[payment["provider_payment_id"]]
    assert payment["checkout_url"] == session["url"]
    assert session["client_reference_id"] == str(payment["id"])
    assert session["metadata"] == {
        "payment_id": str(payment["id"]),
        "subject_type": "leads",
        "subject_id": str(lead["id"]),
    }
    assert (session["amount_total"], session["currency"]) == (5000, "usd")
    [create] = stripe_fake.creates()
    assert re.fullmatch(rf"payment-{payment['id']}-\d+", create.headers["idempotency-key"])
    # The fake checkout page exists only with BILLING_PROVIDER=fake.
    page = await stripe_client.get(f"/dev/checkout/{payment['provider_payment_id']}")
    assert_error(page, 404, "not_found")


async def test_a_retried_stripe_create_makes_one_session(stripe_client, stripe_fake):
    stripe_fake.faults.append(Fault(status=500, accept=True))
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    response = await stripe_client.post(_url(lead), json=BODY, headers=owner.headers)
    assert response.status_code == 201, response.text
    creates = stripe_fake.creates()
    assert len(creates) == 2
    assert creates[0].headers["idempotency-key"] == creates[1].headers["idempotency-key"]
    assert list(stripe_fake.sessions) == [response.json()["provider_payment_id"]]


@pytest.mark.parametrize(
    "fault", [Fault(status=503, count=10), Fault(delay=5.0, count=10)], ids=["down", "slow"]
)
async def test_a_provider_outage_is_502_and_leaves_no_payment(
    stripe_client, stripe_fake, stripe_app, fault
):
    stripe_fake.faults.append(fault)
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    response = await stripe_client.post(_url(lead), json=BODY, headers=owner.headers)
    assert_error(response, 502, "integration_error")
    assert await _payment_rows(stripe_app) == 0
    listed = await stripe_client.get(_url(lead), headers=owner.headers)
    assert listed.json()["total"] == 0
    deleted = await stripe_client.delete(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
    assert deleted.status_code == 204


async def test_while_stripe_keeps_failing_the_circuit_answers_503_at_once(
    database_url, stripe_fake
):
    settings = stripe_settings(
        stripe_fake, database_url, stripe_max_retries=0, stripe_circuit_failures=2
    )
    stripe_fake.faults.append(Fault(status=503, count=10))
    async with running_app(settings) as app, client_for(app) as http:
        owner = await make_member(http)
        lead = await make_lead(http, owner)
        for _ in range(2):
            response = await http.post(_url(lead), json=BODY, headers=owner.headers)
            assert_error(response, 502, "integration_error")
        response = await http.post(_url(lead), json=BODY, headers=owner.headers)
        assert_error(response, 503, "integration_unavailable")
        assert 1 <= int(response.headers["retry-after"]) <= 30
        assert len(stripe_fake.creates()) == 2
        assert await _payment_rows(app) == 0
        await clean_database(app)


async def test_an_amount_stripe_refuses_is_422_and_leaves_no_payment(
    stripe_client, stripe_fake, stripe_app
):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    response = await stripe_client.post(
        _url(lead), json={"amount": 10, "currency": "usd"}, headers=owner.headers
    )
    body = assert_error(response, 422, "payment_rejected")
    assert body["details"][0]["loc"] == ["body", "amount"]
    assert len(stripe_fake.creates()) == 1
    assert await _payment_rows(stripe_app) == 0


# The Stripe webhook settles a lead's payment; the lead hears of it through its hook.

WEBHOOK = "/api/v1/webhooks/stripe"


async def _billed_lead(client, owner=None):
    owner = owner or await make_member(client)
    lead = await make_lead(client, owner)
    response = await client.post(_url(lead), json=BODY, headers=owner.headers)
    assert response.status_code == 201, response.text
    return owner, lead, response.json()


async def _state(client, owner, lead):
    """The lead's status and its payments' statuses, oldest first."""
    lead_now = await client.get(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
    page = await client.get(_url(lead), headers=owner.headers)
    return lead_now.json()["status"], [p["status"] for p in page.json()["items"][::-1]]


async def _post(client, signed):
    return await client.post(WEBHOOK, content=signed.payload, headers=signed.headers)


async def test_a_paid_session_pays_the_payment_and_wins_the_lead(stripe_client, stripe_fake):
    owner, lead, payment = await _billed_lead(stripe_client)
    response = await _post(stripe_client, stripe_fake.event(payment["provider_payment_id"], "paid"))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True}
    assert await _state(stripe_client, owner, lead) == ("won", ["paid"])


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
