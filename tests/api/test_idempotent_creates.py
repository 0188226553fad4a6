"""Every create with a side effect (a text, a charge) honours Idempotency-Key the same way.

`test_idempotency.py` covers payments against the Stripe stand-in in depth; this module runs
the same rules over each such endpoint, so a retried create never causes its effect twice.
"""

import asyncio

import pytest
from sqlalchemy import func, select

from backend.app.models import Message, Payment, SmsUsage
from tests.assertions import assert_error
from tests.factories import make_lead, make_member

PHONE = "+14155550100"
ENDPOINTS = {
    "messages": (Message, {"body": "Hi, following up."}, {"body": "Another text."}),
    "payments": (Payment, {"amount": 500, "currency": "usd"}, {"amount": 600, "currency": "usd"}),
}


async def _count(app, model) -> int:
    async with app.state.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def _setup(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    return owner, lead


def _headers(owner, key: str) -> dict[str, str]:
    return {**owner.headers, "Idempotency-Key": key}


@pytest.fixture(params=sorted(ENDPOINTS))
def endpoint(request):
    return request.param


async def test_the_same_request_again_is_replayed_and_creates_once(client, app, endpoint):
    model, body, _ = ENDPOINTS[endpoint]
    owner, lead = await _setup(client)
    url = f"/api/v1/leads/{lead['id']}/{endpoint}"
    first = await client.post(url, json=body, headers=_headers(owner, "k-1"))
    assert first.status_code == 201, first.text
    again = await client.post(url, json=body, headers=_headers(owner, "k-1"))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await _count(app, model) == 1


async def test_the_same_key_with_another_body_is_409(client, app, endpoint):
    model, body, other = ENDPOINTS[endpoint]
    owner, lead = await _setup(client)
    url = f"/api/v1/leads/{lead['id']}/{endpoint}"
    await client.post(url, json=body, headers=_headers(owner, "k-2"))
    response = await client.post(url, json=other, headers=_headers(owner, "k-2"))
    assert_error(response, 409, "idempotency_key_reused")
    assert await _count(app, model) == 1


async def test_concurrent_requests_with_one_key_create_once(client, app, endpoint):
    model, body, _ = ENDPOINTS[endpoint]
    owner, lead = await _setup(client)
    url = f"/api/v1/leads/{lead['id']}/{endpoint}"
    responses = await asyncio.gather(
        *(client.post(url, json=body, headers=_headers(owner, "race")) for _ in range(4))
    )
    statuses = sorted(r.status_code for r in responses)
    assert 201 in statuses, [r.text for r in responses]
    created_ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created_ids) == 1
    for response in responses:
        if response.status_code != 201:
            assert_error(response, 409, "idempotency_key_in_use")
    assert await _count(app, model) == 1


async def test_a_text_refused_by_its_rules_frees_the_key(client, app):
    owner = await make_member(client)
    lead = await make_lead(client, owner)  # no phone yet
    url = f"/api/v1/leads/{lead['id']}/messages"
    refused = await client.post(url, json={"body": "Hi"}, headers=_headers(owner, "k-3"))
    assert_error(refused, 409, "lead_has_no_phone")
    await client.patch(f"/api/v1/leads/{lead['id']}", json={"phone": PHONE}, headers=owner.headers)
    retried = await client.post(url, json={"body": "Hi"}, headers=_headers(owner, "k-3"))
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert await _count(app, SmsUsage) == 1  # the replay and the refusal took no quota


async def test_openapi_documents_the_key_on_every_side_effect_create(client):
    spec = (await client.get("/openapi.json")).json()
    for endpoint in ENDPOINTS:
        operation = spec["paths"][f"/api/v1/leads/{{lead_id}}/{endpoint}"]["post"]
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert headers == ["Idempotency-Key"]
        assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
        conflict = operation["responses"]["409"]["description"]
        assert "idempotency_key_reused" in conflict
        assert "idempotency_key_in_use" in conflict
