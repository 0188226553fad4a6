"""Factory functions that make users, tokens and leads through the API (or, for admins,
through crud, since no API call can create one)."""

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from backend.app.crud import users as crud_users
from backend.app.models.lead import Lead
from backend.app.models.user import UserRole

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
