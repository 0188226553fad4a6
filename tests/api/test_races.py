"""Races between a delete and a write that refers to the deleted row, on both backends.

The check in Python ("does the lead exist? has it payments?") can be overtaken by the other
request; the database's foreign key then refuses the write, and that refusal must answer
what the check would have: 404 or 409, never 500, with nothing half-written.
"""

import asyncio

from sqlalchemy import func, select

from backend.app.models import Lead, Message, Payment
from tests.factories import make_lead, make_member

ROUNDS = 15


async def _count(app, model, **where) -> int:
    async with app.state.session_factory() as session:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return await session.scalar(query) or 0


async def test_deleting_a_lead_while_billing_it_answers_404_or_409(client, app):
    owner = await make_member(client)
    outcomes = set()
    for _ in range(ROUNDS):
        lead = await make_lead(client, owner)
        deleted, billed = await asyncio.gather(
            client.delete(f"/api/v1/leads/{lead['id']}", headers=owner.headers),
            client.post(
                f"/api/v1/leads/{lead['id']}/payments",
                json={"amount": 500, "currency": "usd"},
                headers=owner.headers,
            ),
        )
        pair = (deleted.status_code, billed.status_code)
        assert pair in {(204, 404), (409, 201)}, (pair, deleted.text, billed.text)
        if pair == (409, 201):
            assert deleted.json()["code"] == "lead_has_payments"
        outcomes.add(pair)
        payments = await _count(app, Payment, subject_type="leads", subject_id=lead["id"])
        leads = await _count(app, Lead, id=lead["id"])
        assert (leads, payments) == ((1, 1) if billed.status_code == 201 else (0, 0))


async def test_deleting_a_lead_while_texting_it_answers_204_and_201_or_404(client, app):
    owner = await make_member(client)
    for _ in range(ROUNDS):
        lead = await make_lead(client, owner, phone="+14155550100")
        deleted, texted = await asyncio.gather(
            client.delete(f"/api/v1/leads/{lead['id']}", headers=owner.headers),
            client.post(
                f"/api/v1/leads/{lead['id']}/messages", json={"body": "Hi"}, headers=owner.headers
            ),
        )
        assert deleted.status_code == 204, deleted.text
        assert texted.status_code in {201, 404}, texted.text
        if texted.status_code == 404:
            assert texted.json()["code"] == "not_found"
        gone = await _count(app, Message, subject_type="leads", subject_id=lead["id"])
        assert gone == 0  # gone with its lead


async def test_two_sign_ups_with_one_email_make_one_user(client):
    body = {"email": "twice@example.com", "password": "long enough"}
    first, second = await asyncio.gather(
        client.post("/api/v1/auth/register", json=body),
        client.post("/api/v1/auth/register", json=body),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["code"] == "email_taken"
