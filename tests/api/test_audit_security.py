"""Security events in the audit trail, on both backends: logins, registration, roles, admins.

A refused event (a failed login, a refused registration) is written in a transaction of its
own, so it stays although its request rolls back. No password, hash or token is recorded.
"""

import json
from typing import Any

from argon2 import PasswordHasher as Argon2Hasher
from fastapi import FastAPI
from sqlalchemy import select

from backend.app.cli import create_admin
from backend.app.models import AuditEvent, User
from tests.api.test_audit_events import audit_events, by_user, rows_of_request
from tests.assertions import assert_error
from tests.conftest import client_for, make_settings, running_app
from tests.factories import PASSWORD, login, make_admin, make_member, unique_email

TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"


async def all_rows(app: FastAPI) -> list[AuditEvent]:
    async with app.state.session_factory() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def as_text(rows: list[AuditEvent]) -> str:
    """Everything the rows hold, as one text to search for secrets."""
    return json.dumps(
        [{c.key: str(getattr(row, c.key)) for c in AuditEvent.__table__.columns} for row in rows]
    )


def reason(row: dict[str, Any]) -> Any:
    return row["changes"]["reason"]["new"]


async def test_a_login_succeeds_in_the_requests_transaction(client, app):
    member = await make_member(client)
    response = await client.post(TOKEN, data={"username": member.email, "password": PASSWORD})
    assert response.status_code == 200
    [row] = await rows_of_request(app, response.headers["x-request-id"])
    assert (row.action, row.actor, row.actor_id) == (
        "login_succeeded",
        f"user:{member.id}",
        member.id,
    )
    assert (row.entity_type, row.entity_id, row.changes) == ("user", member.id, None)
    assert row.client_ip == "127.0.0.1"
    assert response.json()["access_token"] not in as_text(await all_rows(app))


async def test_failed_logins_are_recorded_although_their_requests_roll_back(client, app):
    member = await make_member(client)
    admin = await make_admin(app, client)
    await client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=admin.headers
    )
    tries = [
        (admin.email, "not it!"),
        (member.email, "wrong password 1"),
        ("nobody@example.com", PASSWORD),
        (member.email, PASSWORD),  # the right password of a deactivated account
    ]
    responses = [
        await client.post(TOKEN, data={"username": email, "password": password})
        for email, password in tries
    ]
    for response in responses:
        assert_error(response, 401, "invalid_credentials")

    rows = await audit_events(client, admin, action="login_failed")

    assert [(row["entity_id"], reason(row)) for row in rows] == [
        (member.id, "inactive_user"),
        (None, "unknown_email"),
        (member.id, "wrong_password"),
        (admin.id, "wrong_password"),
    ]
    for row, response in zip(rows, reversed(responses), strict=True):
        assert (row["actor"], row["actor_id"]) == ("anonymous", None)
        assert row["request_id"] == response.headers["x-request-id"]
        assert row["client_ip"] == "127.0.0.1"
    text = as_text(await all_rows(app))
    assert "wrong password 1" not in text
    assert "nobody@example.com" not in text  # what was typed for an unknown account stays out


async def test_registration_writes_the_user_and_the_event_without_the_hash(client, app):
    email = unique_email("new")
    response = await client.post(REGISTER, json={"email": email, "password": PASSWORD})
    assert response.status_code == 201
    user_id = response.json()["id"]

    create, registered = await rows_of_request(app, response.headers["x-request-id"])

    assert (registered.action, registered.entity_id, registered.actor) == (
        "registered",
        user_id,
        "anonymous",
    )
    assert (create.action, create.entity_type, create.entity_id) == ("create", "user", user_id)
    assert create.changes == {
        "email": {"old": None, "new": email},
        "hashed_password": {"old": None, "new": "[redacted]"},
        "role": {"old": None, "new": "member"},
        "is_active": {"old": None, "new": True},
    }
    async with app.state.session_factory() as session:
        stored = await session.get(User, user_id)
    assert stored is not None
    text = as_text(await all_rows(app))
    assert stored.hashed_password not in text
    assert PASSWORD not in text


async def test_refused_registrations_are_recorded(database_url, client, app):
    member = await make_member(client)
    taken = await client.post(REGISTER, json={"email": member.email.upper(), "password": PASSWORD})
    assert_error(taken, 409, "email_taken")
    settings = make_settings(database_url, registration_open=False)
    async with running_app(settings) as closed_app, client_for(closed_app) as http:
        closed = await http.post(REGISTER, json={"email": unique_email(), "password": PASSWORD})
    assert_error(closed, 403, "registration_closed")

    for response, expected in ((taken, "email_taken"), (closed, "registration_closed")):
        [row] = await rows_of_request(app, response.headers["x-request-id"])
        assert (row.action, row.actor, row.entity_type, row.entity_id) == (
            "registration_refused",
            "anonymous",
            "user",
            None,
        )
        assert row.changes == {"reason": {"old": None, "new": expected}}


async def test_role_changes_and_activation_are_security_events(client, app):
    admin = await make_admin(app, client)
    member = await make_member(client)
    url = f"/api/v1/users/{member.id}"
    for body in ({"role": "admin"}, {"is_active": False}, {"is_active": True}, {"full_name": "M"}):
        response = await client.patch(url, json=body, headers=admin.headers)
        assert response.status_code == 200, response.text

    rows = await audit_events(client, admin, entity_type="user", entity_id=member.id)

    assert [row["action"] for row in rows] == [
        "update",  # full name
        "activated",
        "update",
        "deactivated",
        "update",
        "role_changed",
        "update",
        "login_succeeded",  # make_member logs in
        "registered",
        "create",
    ]
    changes = {row["action"]: row["changes"] for row in rows}
    assert changes["role_changed"] == {"role": {"old": "member", "new": "admin"}}
    assert changes["deactivated"] == {"is_active": {"old": True, "new": False}}
    assert changes["activated"] == {"is_active": {"old": False, "new": True}}
    assert rows[0]["changes"] == {"full_name": {"old": None, "new": "M"}}
    assert all(by_user(row, admin) for row in rows[:7])


async def test_an_admin_created_by_the_cli_or_at_start_up_is_recorded(database_url, client, app):
    await create_admin(make_settings(database_url), email="cli@example.com", password=PASSWORD)
    settings = make_settings(
        database_url, first_admin_email="Boss@Example.com", first_admin_password=PASSWORD
    )
    async with running_app(settings):
        pass

    rows = await all_rows(app)

    found = [(row.action, row.actor, row.actor_id) for row in rows]
    assert found == [
        ("create", "cli", None),
        ("admin_created", "cli", None),
        ("create", "system", None),
        ("admin_created", "system", None),
    ]
    async with app.state.session_factory() as session:
        users = {u.email: u.id for u in await session.scalars(select(User))}
    assert [row.entity_id for row in rows] == [users["cli@example.com"]] * 2 + [
        users["boss@example.com"]
    ] * 2
    assert rows[1].request_id is None


async def test_a_password_rehash_at_login_is_recorded_without_either_hash(client, app):
    email = unique_email("old-hash")
    old_hash = Argon2Hasher(memory_cost=8 * 1024, time_cost=1, parallelism=1).hash(PASSWORD)
    async with app.state.session_factory.begin() as session:
        user = User(email=email, hashed_password=old_hash)
        session.add(user)
    await login(client, email)
    async with app.state.session_factory() as session:
        stored = await session.get(User, user.id)
    assert stored is not None
    assert stored.hashed_password != old_hash

    rows = await all_rows(app)

    rehash = [row for row in rows if row.action == "update"]
    assert [(row.actor, row.changes) for row in rehash] == [
        (f"user:{user.id}", {"hashed_password": {"old": "[redacted]", "new": "[redacted]"}})
    ]
    text = as_text(rows)
    assert old_hash not in text
    assert stored.hashed_password not in text
