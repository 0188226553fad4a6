"""Factory functions that make users, tokens and leads through the API (or, for admins,
through crud, since no API call can create one), and texts and payments about any record
through the generic crud functions, as an entity's own endpoint would."""

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI

from backend.app.core.audit_context import acting_as, user_actor
from backend.app.crud import messages as crud_messages
from backend.app.crud import payments as crud_payments
from backend.app.crud import users as crud_users
from backend.app.models.lead import Lead
from backend.app.models.message import Message
from backend.app.models.payment import Payment
from backend.app.models.user import User, UserRole

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@dataclass(frozen=True)
class AuthedUser:
    """A user who has logged in: their id, email and ready-made auth headers."""

    id: int
    email: str
    headers: dict[str, str]


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}@example.com"


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def make_member(client: httpx.AsyncClient, email: str | None = None) -> AuthedUser:
    """Register a member through the API and log them in."""
    email = email or unique_email("member")
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    token = await login(client, email)
    return AuthedUser(response.json()["id"], email, {"Authorization": f"Bearer {token}"})


async def make_admin(app: FastAPI, client: httpx.AsyncClient) -> AuthedUser:
    """Create an admin directly (as the CLI does) and log them in."""
    email = unique_email("admin")
    async with app.state.session_factory.begin() as session:
        user = await crud_users.create_user(
            session,
            email=email,
            hashed_password=await app.state.password_hasher.hash(PASSWORD),
            role=UserRole.ADMIN,
        )
        user_id = user.id
    token = await login(client, email)
    return AuthedUser(user_id, email, {"Authorization": f"Bearer {token}"})


async def queue_text(
    app: FastAPI,
    sender: AuthedUser,
    phone: str,
    body: str = "Hello",
    *,
    send_at: datetime | None = None,
    about_user: int | None = None,
    daily_limit: int | None = None,
) -> Message:
    """Queue a text to `phone` in one unit of work, about user `about_user` or no record.

    The audit trail names `sender` as the actor, as in a request of theirs.
    """
    with acting_as(user_actor(sender.id)):
        async with app.state.session_factory.begin() as session:
            user = await session.get_one(User, sender.id)
            about = await session.get_one(User, about_user) if about_user is not None else None
            message: Message = await crud_messages.queue_text(
                session,
                to=phone,
                body=body,
                send_at=send_at,
                about=about,
                sender=user,
                daily_limit=daily_limit or app.state.settings.sms_daily_limit,
            )
    return message


async def bill_user(app: FastAPI, creator: AuthedUser, amount: int = 5000) -> Payment:
    """Bill user `creator` (a record like any other) through the app's checkout provider."""
    async with app.state.session_factory.begin() as session:
        user = await session.get_one(User, creator.id)
        payment: Payment = await crud_payments.create_payment(
            session,
            about=user,
            amount=amount,
            currency="usd",
            description="Membership",
            creator=user,
            checkout=app.state.checkout_provider,
        )
    return payment


# example:lead start
async def make_lead(client: httpx.AsyncClient, owner: AuthedUser, **fields: Any) -> dict[str, Any]:
    """Create a lead through the API and return its JSON."""
    body = {"name": f"Lead {next(_counter)}", **fields}
    response = await client.post("/api/v1/leads", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    lead: dict[str, Any] = response.json()
    return lead


async def insert_leads(app: FastAPI, owner: AuthedUser, rows: list[dict[str, Any]]) -> list[int]:
    """Insert leads straight into the database, for fields no API call sets (timestamps).

    Each row needs `name`, `created_at` and `updated_at`; returns the new ids in order.
    """
    async with app.state.session_factory.begin() as session:
        leads = [Lead(owner_id=owner.id, **row) for row in rows]
        session.add_all(leads)
        await session.flush()
        return [lead.id for lead in leads]


# example:lead end
