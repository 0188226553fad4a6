"""Idempotency-Key on POST /api/v1/leads/{id}/payments, on both backends.

Against the Stripe stand-in, so "no second checkout session" is checked at the provider.
"""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from backend.app.core.idempotency import ABANDONED_AFTER, KEY_TTL
from backend.app.models import IdempotencyKey, Payment
from backend.app.models.base import utcnow
from tests.assertions import assert_error, error_locations
from tests.factories import make_lead, make_member
from tests.fakes.stripe_fake import Fault

BODY = {"amount": 5000, "currency": "usd", "description": "Setup"}


def _url(lead: dict) -> str:
    return f"/api/v1/leads/{lead['id']}/payments"


def _key(owner, key: str) -> dict[str, str]:
    return {**owner.headers, "Idempotency-Key": key}


async def _count(app, model) -> int:
    async with app.state.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def _age_keys(app, by: timedelta, *, unfinished_only: bool = False) -> None:
    async with app.state.session_factory.begin() as session:
        query = update(IdempotencyKey).values(created_at=utcnow() - by)
        if unfinished_only:
            query = query.where(IdempotencyKey.response_status.is_(None))
        await session.execute(query)


async def test_the_same_request_again_is_replayed(stripe_client, stripe_fake, stripe_app):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    first = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "k-1"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # The same body with other key order and letter case of the currency is the same request.
    again = {"description": "Setup", "currency": "USD", "amount": 5000}
    second = await stripe_client.post(_url(lead), json=again, headers=_key(owner, "k-1"))
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert await _count(stripe_app, Payment) == 1
    assert len(stripe_fake.creates()) == 1
    assert len(stripe_fake.sessions) == 1


async def test_without_a_key_every_request_creates(stripe_client, stripe_app):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    for _ in range(2):
        response = await stripe_client.post(_url(lead), json=BODY, headers=owner.headers)
        assert response.status_code == 201
    assert await _count(stripe_app, Payment) == 2
    assert await _count(stripe_app, IdempotencyKey) == 0


async def test_the_same_key_with_another_body_or_path_is_409(stripe_client, stripe_app):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    other_lead = await make_lead(stripe_client, owner)
    await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "k-2"))
    other_body = await stripe_client.post(
        _url(lead), json={**BODY, "amount": 6000}, headers=_key(owner, "k-2")
    )
    assert_error(other_body, 409, "idempotency_key_reused")
    other_path = await stripe_client.post(_url(other_lead), json=BODY, headers=_key(owner, "k-2"))
    assert_error(other_path, 409, "idempotency_key_reused")
    assert await _count(stripe_app, Payment) == 1


async def test_keys_are_scoped_per_user(stripe_client, stripe_app):
    owner = await make_member(stripe_client)
    other = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    other_lead = await make_lead(stripe_client, other)
    first = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "shared"))
    second = await stripe_client.post(_url(other_lead), json=BODY, headers=_key(other, "shared"))
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert first.json()["id"] != second.json()["id"]


async def test_a_key_whose_first_request_still_runs_is_409_in_use(
    stripe_client, stripe_fake, stripe_app
):
    stripe_fake.faults.append(Fault(delay=1.0))
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    first = asyncio.create_task(
        stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "slow"))
    )
    for _ in range(500):  # wait (at most 10 s) until the first request is at the provider
        if stripe_fake.creates():
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the first request never reached the provider")
    during = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "slow"))
    assert_error(during, 409, "idempotency_key_in_use")
    assert (await first).status_code == 201
    after = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "slow"))
    assert after.headers["idempotent-replayed"] == "true"
    assert await _count(stripe_app, Payment) == 1


async def test_concurrent_requests_with_one_key_make_one_payment(
    stripe_client, stripe_fake, stripe_app
):
    stripe_fake.faults.append(Fault(delay=0.3))
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    responses = await asyncio.gather(
        *(stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "race")) for _ in range(4))
    )
    created = [r for r in responses if r.status_code == 201]
    assert created, [r.text for r in responses]
    assert {r.json()["id"] for r in created} == {created[0].json()["id"]}
    for response in responses:
        if response.status_code != 201:
            assert_error(response, 409, "idempotency_key_in_use")
    assert await _count(stripe_app, Payment) == 1
    assert len(stripe_fake.sessions) == 1


async def test_a_failed_request_frees_its_key(stripe_client, stripe_fake, stripe_app):
    stripe_fake.faults.append(Fault(status=503, count=3))
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    failed = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "retry-me"))
    assert_error(failed, 502, "integration_error")
    assert await _count(stripe_app, IdempotencyKey) == 0
    retried = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "retry-me"))
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert await _count(stripe_app, Payment) == 1


async def test_a_key_older_than_24_hours_runs_anew(stripe_client, stripe_app):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    first = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "old"))
    await _age_keys(stripe_app, KEY_TTL - timedelta(minutes=1))
    kept = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "old"))
    assert kept.headers["idempotent-replayed"] == "true"
    await _age_keys(stripe_app, KEY_TTL + timedelta(minutes=1))
    anew = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "old"))
    assert anew.status_code == 201
    assert "idempotent-replayed" not in anew.headers
    assert anew.json()["id"] != first.json()["id"]
    assert await _count(stripe_app, Payment) == 2


async def test_an_abandoned_key_is_taken_over(stripe_client, stripe_app):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    async with stripe_app.state.session_factory.begin() as session:
        session.add(IdempotencyKey(user_id=owner.id, key="crashed", request_hash="x" * 64))
    blocked = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "crashed"))
    assert_error(blocked, 409, "idempotency_key_reused")
    await _age_keys(stripe_app, ABANDONED_AFTER + timedelta(seconds=5), unfinished_only=True)
    response = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "crashed"))
    assert response.status_code == 201


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_a_key_outside_1_to_255_characters_is_422(stripe_client, key):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    response = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, key))
    assert error_locations(response) == [["header", "Idempotency-Key"]]


async def test_a_255_character_key_works(stripe_client):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    response = await stripe_client.post(_url(lead), json=BODY, headers=_key(owner, "k" * 255))
    assert response.status_code == 201
