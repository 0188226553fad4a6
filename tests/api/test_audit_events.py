"""The audit trail through the API, on both backends: one row per change, read by admins.

Security events (logins, registration, roles) are in test_audit_security.py; the session
hooks themselves and the append-only table in tests/core/test_audit.py.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from backend.app.integrations.twilio import ConsoleSmsSender
from backend.app.models import AuditEvent, Message
from backend.app.worker import SmsWorker
from tests.api.test_webhooks_twilio import STATUS_PATH, _callback, _post, _sent_message
from tests.assertions import assert_error, error_locations
from tests.factories import AuthedUser, make_admin, make_lead, make_member, queue_text
from tests.fakes.stripe_fake import Fault

AUDIT = "/api/v1/audit-events"
ITEM_FIELDS = {
    "id",
    "occurred_at",
    "actor_id",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "changes",
    "request_id",
    "client_ip",
}


async def audit_events(
    client: httpx.AsyncClient, admin: AuthedUser, **params: Any
) -> list[dict[str, Any]]:
    """The audit events matching `params`, newest first, read through the API."""
    response = await client.get(AUDIT, params={"limit": 100, **params}, headers=admin.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def rows_of_request(app: FastAPI, request_id: str) -> list[AuditEvent]:
    """The audit rows a request wrote, read straight from the table."""
    async with app.state.session_factory() as session:
        query = select(AuditEvent).where(AuditEvent.request_id == request_id)
        return list(await session.scalars(query))


def by_user(row: dict[str, Any], user: AuthedUser) -> bool:
    return row["actor"] == f"user:{user.id}" and row["actor_id"] == user.id


# example:lead start
async def test_a_lead_created_updated_and_deleted_leaves_one_row_each(client, app):
    owner = await make_member(client)
    created = await client.post(
        "/api/v1/leads",
        json={"name": "Ada", "phone": "+1 (415) 555-0100", "notes": "Call back"},
        headers=owner.headers,
    )
    lead_id = created.json()["id"]
    url = f"/api/v1/leads/{lead_id}"
    updated = await client.patch(
        url, json={"status": "contacted", "notes": None}, headers=owner.headers
    )
    unchanged = await client.patch(url, json={"name": "Ada"}, headers=owner.headers)
    deleted = await client.delete(url, headers=owner.headers)
    assert (updated.status_code, unchanged.status_code, deleted.status_code) == (200, 200, 204)
    admin = await make_admin(app, client)

    rows = await audit_events(client, admin, entity_type="lead", entity_id=lead_id)

    assert [row["action"] for row in rows] == ["delete", "update", "create"]
    delete, update, create = rows
    assert create["changes"] == {
        "owner_id": {"old": None, "new": owner.id},
        "name": {"old": None, "new": "Ada"},
        "phone": {"old": None, "new": "+14155550100"},
        "status": {"old": None, "new": "new"},
        "notes": {"old": None, "new": "Call back"},
    }
    assert update["changes"] == {
        "status": {"old": "new", "new": "contacted"},
        "notes": {"old": "Call back", "new": None},
    }
    assert delete["changes"] == {
        "owner_id": {"old": owner.id, "new": None},
        "name": {"old": "Ada", "new": None},
        "phone": {"old": "+14155550100", "new": None},
        "status": {"old": "contacted", "new": None},
    }
    for row, response in zip(rows, [deleted, updated, created], strict=True):
        assert set(row) == ITEM_FIELDS
        assert by_user(row, owner)
        assert (row["entity_type"], row["entity_id"]) == ("lead", lead_id)
        assert row["request_id"] == response.headers["x-request-id"]
        assert row["client_ip"] == "127.0.0.1"
        assert row["occurred_at"].endswith(("Z", "+00:00"))
    assert await rows_of_request(app, unchanged.headers["x-request-id"]) == []


async def test_a_request_that_fails_after_its_flush_leaves_no_row(
    stripe_client, stripe_fake, stripe_app
):
    stripe_fake.faults.append(Fault(status=503, count=10))
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    response = await stripe_client.post(
        f"/api/v1/leads/{lead['id']}/payments",
        json={"amount": 5000, "currency": "usd"},
        headers=owner.headers,
    )
    assert_error(response, 502, "integration_error")  # the payment was flushed, then undone
    assert await rows_of_request(stripe_app, response.headers["x-request-id"]) == []


async def test_a_payment_paid_by_the_stripe_webhook_is_recorded_as_the_webhook(
    stripe_client, stripe_fake, stripe_app
):
    owner = await make_member(stripe_client)
    lead = await make_lead(stripe_client, owner)
    created = await stripe_client.post(
        f"/api/v1/leads/{lead['id']}/payments",
        json={"amount": 5000, "currency": "usd"},
        headers=owner.headers,
    )
    payment = created.json()
    signed = stripe_fake.event(payment["provider_payment_id"], "paid")
    webhook = await stripe_client.post(
        "/api/v1/webhooks/stripe", content=signed.payload, headers=signed.headers
    )
    assert webhook.status_code == 200, webhook.text
    admin = await make_admin(stripe_app, stripe_client)

    rows = await audit_events(stripe_client, admin, entity_type="payment")
    assert [(row["action"], row["actor"]) for row in rows] == [
        ("update", "webhook:stripe"),
        ("update", f"user:{owner.id}"),  # the checkout session, opened after the insert
        ("create", f"user:{owner.id}"),
    ]
    paid = rows[0]
    assert paid["changes"] == {"status": {"old": "pending", "new": "paid"}}
    assert (paid["entity_id"], paid["actor_id"]) == (payment["id"], None)
    assert paid["request_id"] == webhook.headers["x-request-id"]
    assert rows[1]["changes"] == {
        "checkout_url": {"old": None, "new": payment["checkout_url"]},
        "provider_payment_id": {"old": None, "new": payment["provider_payment_id"]},
    }
    [won] = await audit_events(stripe_client, admin, entity_type="lead", action="update")
    assert won["actor"] == "webhook:stripe"
    assert won["changes"] == {"status": {"old": "new", "new": "won"}}


# example:lead end


async def test_the_worker_sending_a_text_is_recorded_as_the_worker(client, app):
    owner = await make_member(client)
    queued = await queue_text(app, owner, "+14155550100", "Hi")
    worker = SmsWorker(
        settings=app.state.settings,
        session_factory=app.state.session_factory,
        sender=ConsoleSmsSender(),
    )
    assert await worker.run_once() == 1
    admin = await make_admin(app, client)

    rows = await audit_events(client, admin, entity_type="message", entity_id=queued.id)

    sent, claimed, created = rows
    assert (created["action"], created["actor"]) == ("create", f"user:{owner.id}")
    assert created["changes"]["status"] == {"old": None, "new": "queued"}
    assert created["changes"]["body"] == {"old": None, "new": "Hi"}
    for row in (claimed, sent):
        assert (row["action"], row["actor"], row["actor_id"]) == ("update", "worker", None)
        assert (row["request_id"], row["client_ip"]) == (None, None)
    assert claimed["changes"] == {"status": {"old": "queued", "new": "sending"}}
    async with app.state.session_factory() as session:
        stored = await session.get_one(Message, queued.id)
    assert set(sent["changes"]) == {"status", "provider_message_id", "sent_at"}
    assert sent["changes"]["status"] == {"old": "sending", "new": "sent"}
    assert sent["changes"]["provider_message_id"] == {
        "old": None,
        "new": stored.provider_message_id,
    }
    assert sent["changes"]["sent_at"]["old"] is None


async def test_a_delivery_callback_is_recorded_as_the_twilio_webhook(client, app):
    message = await _sent_message(client, app)
    response = await _post(client, STATUS_PATH, _callback(message, "delivered"))
    assert response.status_code == 204
    admin = await make_admin(app, client)
    [row] = await audit_events(client, admin, actor="webhook:twilio")
    assert (row["entity_type"], row["entity_id"]) == ("message", message["id"])
    assert row["changes"] == {"status": {"old": "sent", "new": "delivered"}}
    assert row["request_id"] == response.headers["x-request-id"]


async def test_members_get_403_and_no_route_changes_a_row(client, app):
    member = await make_member(client)
    assert_error(await client.get(AUDIT, headers=member.headers), 403, "forbidden")
    admin = await make_admin(app, client)
    [row, *_] = await audit_events(client, admin)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in (AUDIT, f"{AUDIT}/{row['id']}"):
            response = await client.request(method, path, headers=admin.headers, json={})
            assert response.status_code in (404, 405), (method, path)


async def _seed(app: FastAPI, rows: list[dict[str, Any]]) -> list[int]:
    async with app.state.session_factory.begin() as session:
        events = [
            AuditEvent(
                actor=row.get("actor", "system"),
                action=row.get("action", "update"),
                entity_type=row.get("entity_type", "lead"),
                entity_id=row.get("entity_id", 1),
                occurred_at=row["occurred_at"],
            )
            for row in rows
        ]
        session.add_all(events)
        await session.flush()
        return [event.id for event in events]


async def test_filters_and_paging_newest_first_ties_broken_by_id(client, app):
    admin = await make_admin(app, client)  # its own rows are at the current time
    base = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    ids = await _seed(
        app,
        [
            {"occurred_at": base, "entity_id": 7},
            {"occurred_at": base + timedelta(minutes=1), "entity_id": 7, "action": "delete"},
            {"occurred_at": base + timedelta(minutes=1), "entity_id": 8, "actor": "worker"},
            {"occurred_at": base + timedelta(minutes=2), "entity_type": "message"},
        ],
    )
    window = {"from": "2026-01-05T10:00:00+01:00", "to": "2026-01-05T09:02:00Z"}

    async def ids_for(**params: Any) -> list[int]:
        return [row["id"] for row in await audit_events(client, admin, **params)]

    assert await ids_for(**window) == [ids[2], ids[1], ids[0]]
    assert await ids_for(entity_type="lead", entity_id=7) == [ids[1], ids[0]]
    assert await ids_for(actor="worker") == [ids[2]]
    assert await ids_for(action="delete") == [ids[1]]
    assert await ids_for(entity_type="message", to="2026-01-06T00:00:00Z") == [ids[3]]
    pages = [
        (
            await client.get(
                AUDIT, params={**window, "limit": 2, "offset": offset}, headers=admin.headers
            )
        ).json()
        for offset in (0, 2)
    ]
    assert [page["total"] for page in pages] == [3, 3]
    assert [[item["id"] for item in page["items"]] for page in pages] == [
        [ids[2], ids[1]],
        [ids[0]],
    ]


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"from": "2026-01-05T09:00:00"}, "from"),  # no offset
        ({"entity_id": 0}, "entity_id"),
        ({"entity_id": 2**63}, "entity_id"),
        ({"actor": "user:\x011"}, "actor"),
        ({"action": "x" * 51}, "action"),
        ({"entity_type": ""}, "entity_type"),
    ],
)
async def test_bad_filters_are_422(client, app, params, location):
    admin = await make_admin(app, client)
    response = await client.get(AUDIT, params=params, headers=admin.headers)
    assert error_locations(response) == [["query", location]]
