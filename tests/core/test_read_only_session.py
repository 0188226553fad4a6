"""GET and HEAD run on a read-only session: no transaction round trips, and no writes."""

import asyncio

import pytest
from sqlalchemy import func, select, text, update

from backend.app.core.database import ReadOnlySessionError
from backend.app.models.user import User
from tests.factories import make_member


async def test_a_flush_of_changes_through_a_read_only_session_is_refused(app, client):
    member = await make_member(client)
    async with app.state.read_session_factory() as session:
        user = await session.get(User, member.id)
        assert user is not None
        user.full_name = "Changed by a GET"
        session.add(User(email="new@example.com", hashed_password="x", full_name="New"))
        with pytest.raises(ReadOnlySessionError):
            await session.flush()
    async with app.state.session_factory() as session:
        stored = await session.get(User, member.id)
        assert stored is not None
        assert stored.full_name != "Changed by a GET"
        count = await session.scalar(select(func.count()).where(User.email == "new@example.com"))
        assert count == 0


async def test_a_write_statement_through_a_read_only_session_is_refused(app, client):
    member = await make_member(client)
    async with app.state.read_session_factory() as session:
        with pytest.raises(ReadOnlySessionError):
            await session.execute(update(User).values(full_name="Bulk").where(User.id > 0))
    async with app.state.session_factory() as session:
        stored = await session.get(User, member.id)
        assert stored is not None
        assert stored.full_name != "Bulk"


async def test_a_read_only_session_runs_each_statement_outside_a_transaction(app, backend_name):
    if backend_name != "postgresql":
        pytest.skip("now() is the transaction's start time on PostgreSQL")
    async with app.state.read_session_factory() as session:
        first = await session.scalar(text("SELECT now()"))
        await asyncio.sleep(0.01)
        second = await session.scalar(text("SELECT now()"))
    assert second > first  # inside one transaction both would be its start time
