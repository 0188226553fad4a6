"""Idempotent creates: the `Idempotency-Key` header, for any POST that makes something.

A client that may retry a create (a timeout, a dropped connection) sends a key it made up
(1-255 characters, e.g. a UUID) and sends the same key with every retry. Rules:

- Keys are scoped per user and kept at least 24 hours (`KEY_TTL`); an older key runs anew.
- The same key with the same method, path and body: the stored status and body of the first
  success, with the header `Idempotent-Replayed: true`; the handler does not run again.
- The same key with another method, path or body: 409 `idempotency_key_reused`.
- The same key while its first request still runs: 409 `idempotency_key_in_use`.
- A request that fails (any error) stores nothing: the key may be retried, and runs anew.

How: the row `(user_id, key)` is inserted and committed in its own short transaction before
the handler runs; its unique constraint is the lock, so of two concurrent requests only one
runs. The response is written to that row in the request's own unit of work, so it commits
together with what the handler created. On failure the unit of work is rolled back first,
then the row is deleted. A row left "running" by a crashed process is taken over after
`ABANDONED_AFTER`.

Use it in a handler through the `Idempotency` dependency (see `routers/messages.py`)::

    @router.post("", response_model=ThingRead, status_code=201, responses={
        **error_responses(*IDEMPOTENCY_ERRORS, ...), 201: replayable("The new thing.")})
    async def create_thing(body: ThingCreate, session: SessionDep,
                           idempotency: Idempotency) -> ThingRead | Response:
        async def create() -> ThingRead:
            return ThingRead.model_validate(await crud_things.create(session, data=body))

        return await idempotency.run(body, create)

Every create that causes a side effect (a text, a charge, a record in another system) takes
it, so a client's retry never causes the effect twice.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core.deps import CurrentUser, SessionDep
from backend.app.core.errors import (
    AppError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
)
from backend.app.models.base import utcnow
from backend.app.models.idempotency_key import IdempotencyKey
from backend.app.schemas.fields import SINGLE_LINE_PATTERN

KEY_TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=5)  # far longer than any request may run
REPLAYED_HEADER = "Idempotent-Replayed"

ResultT = TypeVar("ResultT", bound=BaseModel)

IDEMPOTENCY_ERRORS: tuple[type[AppError], ...] = (
    IdempotencyKeyReusedError,
    IdempotencyKeyInUseError,
)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=SINGLE_LINE_PATTERN,
        description=(
            "Optional, 1-255 characters of your choice (e.g. a UUID). Retrying with the same "
            "key replays the first response (header `Idempotent-Replayed: true`) instead of "
            "creating again. Keys are per user and kept at least 24 hours."
        ),
    ),
]


def request_hash(request: Request, body: BaseModel | None) -> str:
    """Fingerprint a request by method, path, query and its validated body (key order free)."""
    payload = body.model_dump(mode="json") if body is not None else None
    canonical = json.dumps(
        [request.method, request.url.path, request.url.query, payload],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def run_idempotent(
    request: Request,
    *,
    session: AsyncSession,
    user_id: int,
    key: str | None,
    body: BaseModel | None,
    status_code: int,
    action: Callable[[], Awaitable[ResultT]],
    response: Response | None = None,
) -> ResultT | Response:
    """Run `action` once per (user, key); replay its stored response for a repeated request.

    Args:
        request: The current request (its method and path are part of the fingerprint).
        session: The request's unit of work; `action` must write through it.
        user_id: The caller; keys of different users never meet.
        key: The Idempotency-Key header, or None to simply run `action`.
        body: The validated request body, or None.
        status_code: The status the route answers on success.
        action: Does the work and returns the response model.
        response: The handler's `Response` parameter, if `action` may set its status (e.g.
            200 for a create that found its record already made): that status is stored
            and replayed instead of `status_code`.

    Returns:
        The model `action` returned, or the stored response of the first request.

    Raises:
        IdempotencyKeyReusedError: the key came with another method, path or body.
        IdempotencyKeyInUseError: the key's first request is still running.
    """
    if key is None:
        return await action()
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    fingerprint = request_hash(request, body)
    claim = await _claim(factory, user_id=user_id, key=key, fingerprint=fingerprint)
    if isinstance(claim, Response):
        return claim
    stored = False
    try:
        result = await action()
        if response is not None and response.status_code:
            status_code = response.status_code  # the action chose its answer's status
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == claim)
            .values(response_status=status_code, response_body=result.model_dump_json())
        )
        stored = True
    finally:
        if not stored:
            # Roll back first: on SQLite the request's write lock would block the delete.
            await session.rollback()
            await _release(factory, claim)
    return result


async def _claim(
    factory: async_sessionmaker[AsyncSession], *, user_id: int, key: str, fingerprint: str
) -> int | Response:
    """Insert the key's row (committed at once) and return its id, or the stored replay.

    Raises:
        IdempotencyKeyReusedError: the key's row holds another request's fingerprint.
        IdempotencyKeyInUseError: the key's first request is still running.
    """
    for _ in range(3):
        # Look before inserting: a read never waits for a writer (SQLite WAL), so a repeated
        # key is answered at once even while the first request holds SQLite's write lock.
        async with factory.begin() as session:
            existing = await session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
                )
            )
            if existing is not None and _is_stale(existing, utcnow()):
                await session.delete(existing)
                existing = None
        if existing is not None:
            return _answer_for(existing, fingerprint)
        try:
            async with factory.begin() as session:
                row = IdempotencyKey(
                    user_id=user_id, key=key, request_hash=fingerprint, created_at=utcnow()
                )
                session.add(row)
            return row.id
        except IntegrityError:
            continue  # another request claimed it first: answer from its row
    raise IdempotencyKeyInUseError


def _is_stale(row: IdempotencyKey, now: datetime) -> bool:
    """Whether a key expired, or its request was abandoned (the process died mid-way)."""
    if row.created_at < now - KEY_TTL:
        return True
    return row.response_status is None and row.created_at < now - ABANDONED_AFTER


def _answer_for(row: IdempotencyKey, fingerprint: str) -> Response:
    """Return the replay of a finished request with this key, or raise why not.

    Raises:
        IdempotencyKeyReusedError: another request's fingerprint.
        IdempotencyKeyInUseError: the first request is still running.
    """
    if row.request_hash != fingerprint:
        raise IdempotencyKeyReusedError
    if row.response_status is None or row.response_body is None:
        raise IdempotencyKeyInUseError
    return Response(
        content=row.response_body,
        status_code=row.response_status,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"},
    )


async def _release(factory: async_sessionmaker[AsyncSession], row_id: int) -> None:
    """Delete an unfinished key so the client may retry it."""
    async with factory.begin() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == row_id, IdempotencyKey.response_status.is_(None)
            )
        )


async def delete_expired_keys(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete keys older than `KEY_TTL`; call it from a periodic job. Returns how many."""
    cutoff = (now or utcnow()) - KEY_TTL
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


class IdempotentRequest:
    """The current request's Idempotency-Key, ready to run a create at most once."""

    def __init__(
        self, request: Request, session: AsyncSession, user_id: int, key: str | None
    ) -> None:
        self._request = request
        self._session = session
        self._user_id = user_id
        self.key = key

    async def run(
        self,
        body: BaseModel | None,
        action: Callable[[], Awaitable[ResultT]],
        *,
        status_code: int = 201,
        response: Response | None = None,
    ) -> ResultT | Response:
        """Run `action` once per key; see `run_idempotent`.

        Raises:
            IdempotencyKeyReusedError: the key came with another method, path or body.
            IdempotencyKeyInUseError: the key's first request is still running.
        """
        return await run_idempotent(
            self._request,
            session=self._session,
            user_id=self._user_id,
            key=self.key,
            body=body,
            status_code=status_code,
            action=action,
            response=response,
        )


async def get_idempotent_request(
    request: Request, session: SessionDep, user: CurrentUser, key: IdempotencyKeyHeader = None
) -> IdempotentRequest:
    """Return the request's Idempotency-Key handle (the header is optional)."""
    return IdempotentRequest(request, session, user.id, key)


Idempotency = Annotated[IdempotentRequest, Depends(get_idempotent_request)]


def replayable(description: str) -> dict[str, Any]:
    """Document a create's success answer, which a replay repeats with its marker header."""
    return {
        "description": f"{description} A replay of an earlier request with the same "
        "Idempotency-Key repeats its answer, with the header `Idempotent-Replayed: true`.",
        "headers": {
            REPLAYED_HEADER: {
                "description": "`true` when this answer is a replay of an earlier request.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    }
