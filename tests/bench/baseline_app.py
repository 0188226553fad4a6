"""The benchmark's yardstick: bare Starlette + asyncpg doing the SQL our app issues.

Per request it does what our app must do and nothing else: read the bearer token and check
its signature (PyJWT, the same library and key), look the user up by id, run the lead
statements inside BEGIN/COMMIT, and answer JSON. No validation layer, no ORM, no
middleware: the gap between this and our app is what the framework and our code cost.

Served by `tests/bench/run.py` as `uvicorn tests.bench.baseline_app:app` with the
`DATABASE_URL` (a plain `postgresql://` DSN) and `SECRET_KEY` of the app under test.
"""

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LEAD_COLUMNS = (
    "leads.id, leads.owner_id, leads.name, leads.phone, leads.email, leads.status, "
    "leads.source, leads.notes, leads.created_at, leads.updated_at, "
    "EXISTS (SELECT 1 FROM sms_opt_outs WHERE sms_opt_outs.phone = leads.phone) AS sms_opted_out"
)
USER_BY_ID = (
    "SELECT users.id, users.email, users.hashed_password, users.full_name, users.role, "
    "users.is_active, users.created_at, users.updated_at FROM users WHERE users.id = $1::BIGINT"
)
LEAD_BY_ID = (
    f"SELECT {LEAD_COLUMNS} FROM leads "  # noqa: S608 - constant columns, bound values
    "WHERE leads.id = $1::BIGINT AND leads.owner_id = $2::BIGINT"
)
COUNT_LEADS = "SELECT count(leads.id) AS count_1 FROM leads WHERE leads.owner_id = $1::BIGINT"
LIST_LEADS = (
    f"SELECT {LEAD_COLUMNS} FROM leads WHERE leads.owner_id = $1::BIGINT "  # noqa: S608
    "ORDER BY leads.created_at DESC, leads.id DESC LIMIT $2::INTEGER OFFSET $3::INTEGER"
)
INSERT_LEAD = (
    "INSERT INTO leads (owner_id, name, phone, email, status, source, notes, "
    "created_at, updated_at) VALUES ($1::BIGINT, $2::VARCHAR, $3::VARCHAR, $4::VARCHAR, $5, "
    "$6::VARCHAR, $7::VARCHAR, $8::TIMESTAMP WITH TIME ZONE, "
    "$9::TIMESTAMP WITH TIME ZONE) RETURNING leads.id, "
    "EXISTS (SELECT 1 FROM sms_opt_outs WHERE sms_opt_outs.phone = leads.phone)"
)
UPDATABLE = ("name", "phone", "email", "status", "source", "notes")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
DATABASE_URL = os.environ.get("DATABASE_URL", "")

pool: asyncpg.Pool | None = None


class UnauthorizedError(Exception):
    """The bearer token is missing or bad, or the user is gone."""


def _error(status: int, code: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": code, "details": None}, status_code=status)


def _lead_json(row: Mapping[str, Any]) -> dict[str, Any]:
    lead = dict(row)
    lead["created_at"] = lead["created_at"].isoformat()
    lead["updated_at"] = lead["updated_at"].isoformat()
    return lead


async def _current_user_id(request: Request, conn: asyncpg.Connection) -> int:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise UnauthorizedError
    try:
        claims = jwt.decode(header[7:], SECRET_KEY, algorithms=["HS256"])
    except jwt.InvalidTokenError as exc:
        raise UnauthorizedError from exc
    user = await conn.fetchrow(USER_BY_ID, int(claims["sub"]))
    if user is None or not user["is_active"]:
        raise UnauthorizedError
    return int(user["id"])


def _pool() -> asyncpg.Pool:
    assert pool is not None
    return pool


async def create_lead(request: Request) -> Response:
    body = json.loads(await request.body())
    now = datetime.now(UTC)
    async with _pool().acquire() as conn, conn.transaction():
        try:
            user_id = await _current_user_id(request, conn)
        except UnauthorizedError:
            return _error(401, "unauthorized")
        values = (
            user_id,
            body["name"],
            body.get("phone"),
            body.get("email"),
            body.get("status", "new"),
            body.get("source"),
            body.get("notes"),
            now,
            now,
        )
        lead_id, opted_out = await conn.fetchrow(INSERT_LEAD, *values)
    names = ("owner_id", "name", "phone", "email", "status", "source", "notes")
    lead = dict(zip(names, values[: len(names)], strict=True))
    lead.update(id=lead_id, sms_opted_out=opted_out, created_at=now, updated_at=now)
    return JSONResponse(
        _lead_json(lead),
        status_code=201,
        headers={"Location": f"/api/v1/leads/{lead_id}"},
    )


async def read_lead(request: Request) -> Response:
    lead_id = int(request.path_params["lead_id"])
    async with _pool().acquire() as conn, conn.transaction():
        try:
            user_id = await _current_user_id(request, conn)
        except UnauthorizedError:
            return _error(401, "unauthorized")
        row = await conn.fetchrow(LEAD_BY_ID, lead_id, user_id)
    if row is None:
        return _error(404, "not_found")
    return JSONResponse(_lead_json(row))


async def list_leads(request: Request) -> Response:
    limit = int(request.query_params.get("limit", "50"))
    offset = int(request.query_params.get("offset", "0"))
    async with _pool().acquire() as conn, conn.transaction():
        try:
            user_id = await _current_user_id(request, conn)
        except UnauthorizedError:
            return _error(401, "unauthorized")
        total = await conn.fetchval(COUNT_LEADS, user_id)
        rows = await conn.fetch(LIST_LEADS, user_id, limit, offset)
    items = [_lead_json(row) for row in rows]
    return JSONResponse({"items": items, "total": total, "limit": limit, "offset": offset})


async def update_lead(request: Request) -> Response:
    lead_id = int(request.path_params["lead_id"])
    changes = {k: v for k, v in json.loads(await request.body()).items() if k in UPDATABLE}
    async with _pool().acquire() as conn, conn.transaction():
        try:
            user_id = await _current_user_id(request, conn)
        except UnauthorizedError:
            return _error(401, "unauthorized")
        row = await conn.fetchrow(LEAD_BY_ID, lead_id, user_id)
        if row is None:
            return _error(404, "not_found")
        lead = dict(row)
        changed = {k: v for k, v in changes.items() if lead[k] != v}
        lead.update(changed, updated_at=datetime.now(UTC))
        sets = [f"{name}=${i}" for i, name in enumerate(changed, start=1)]
        sets.append(f"updated_at=${len(sets) + 1}::TIMESTAMP WITH TIME ZONE")
        where = f"WHERE leads.id = ${len(sets) + 1}::BIGINT"
        sql = f"UPDATE leads SET {', '.join(sets)} {where}"  # noqa: S608 - names from UPDATABLE
        await conn.execute(sql, *changed.values(), lead["updated_at"], lead_id)
    return JSONResponse(_lead_json(lead))


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    global pool
    # The same ceiling as the app's default pool: at most 20, kept open once opened.
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=10, max_size=20)
    try:
        yield
    finally:
        await pool.close()


app = Starlette(
    routes=[
        Route("/api/v1/leads", create_lead, methods=["POST"]),
        Route("/api/v1/leads", list_leads, methods=["GET"]),
        Route("/api/v1/leads/{lead_id:int}", read_lead, methods=["GET"]),
        Route("/api/v1/leads/{lead_id:int}", update_lead, methods=["PATCH"]),
    ],
    lifespan=lifespan,
)
