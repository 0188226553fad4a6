"""The unit of work turns every kind of constraint violation into our error, on both backends."""

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, text
from sqlalchemy.exc import IntegrityError

from backend.app.core.database import create_engine, unit_of_work
from backend.app.core.db_errors import translate_integrity_error
from backend.app.core.errors import (
    ConflictError,
    EmailTakenError,
    HasPaymentsError,
    InvalidFieldError,
    NotFoundError,
)
from backend.app.models import Base, Message, User
from backend.app.models.base import utcnow
from backend.app.models.message import MessageDirection, MessageStatus
from tests.conftest import make_settings


async def _user(app, email: str = "owner@example.com") -> int:
    async with unit_of_work(app.state.session_factory) as session:
        user = User(email=email, hashed_password="x", role="member", is_active=True)
        session.add(user)
        await session.flush()
        return user.id


async def _text(app, sender_id: int) -> int:
    """A text queued by `sender_id`: its `created_by_id` refers to users (ON DELETE RESTRICT)."""
    async with unit_of_work(app.state.session_factory) as session:
        message = Message(
            created_by_id=sender_id,
            direction=MessageDirection.OUTBOUND,
            status=MessageStatus.QUEUED,
            body="Hi",
            phone="+14155550100",
            due_at=utcnow(),
            attempts=0,
        )
        session.add(message)
        await session.flush()
        return message.id


async def test_a_unique_violation_with_a_declared_error_raises_it(client, app):
    await _user(app, "taken@example.com")
    with pytest.raises(EmailTakenError):
        await _user(app, "taken@example.com")


async def test_an_insert_referring_to_a_missing_row_is_not_found(client, app):
    with pytest.raises(NotFoundError) as caught:
        await _text(app, sender_id=987654)
    assert caught.value.message == "The user it refers to was not found."


async def test_deleting_a_row_still_referred_to_raises_the_declared_error(
    empty_database_url: str,
) -> None:
    metadata = MetaData(naming_convention=Base.metadata.naming_convention)
    Table("parents", metadata, Column("id", Integer, primary_key=True))
    Table(
        "children",
        metadata,
        Column("id", Integer, primary_key=True),
        Column(
            "parent_id",
            ForeignKey("parents.id", ondelete="RESTRICT", info={"referenced": HasPaymentsError}),
        ),
    )
    engine = create_engine(make_settings(empty_database_url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(text("INSERT INTO parents (id) VALUES (1)"))
            await connection.execute(text("INSERT INTO children (id, parent_id) VALUES (1, 1)"))
        with pytest.raises(IntegrityError) as caught:
            async with engine.begin() as connection:
                await connection.execute(text("DELETE FROM parents WHERE id = 1"))
    finally:
        await engine.dispose()
    assert isinstance(translate_integrity_error(caught.value, metadata), HasPaymentsError)


async def test_deleting_a_referred_row_without_a_declared_error_is_a_conflict(
    client, app, backend_name
):
    owner = await _user(app)
    await _text(app, owner)
    with pytest.raises(ConflictError) as caught:
        async with unit_of_work(app.state.session_factory) as session:
            await session.execute(text("DELETE FROM users WHERE id = :id"), {"id": owner})
    assert type(caught.value) is ConflictError
    # SQLite does not name the foreign key; several refer to users, so it cannot say which.
    assert caught.value.message == (
        "This user cannot be deleted: a message refers to it."
        if backend_name == "postgresql"
        else "This record cannot be deleted: another record refers to it."
    )


async def test_a_null_in_a_not_null_column_is_a_validation_error(client, app):
    with pytest.raises(InvalidFieldError) as caught:
        async with unit_of_work(app.state.session_factory) as session:
            await session.execute(
                text(
                    "INSERT INTO users (email, hashed_password, role, is_active, created_at, "
                    "updated_at) VALUES (NULL, 'x', 'member', true, :now, :now)"
                ),
                {"now": utcnow()},
            )
    assert caught.value.details == [
        {"loc": ["body", "email"], "msg": "may not be null", "type": "value_error"}
    ]


async def test_a_check_violation_is_a_validation_error(client, app):
    with pytest.raises(InvalidFieldError):
        async with unit_of_work(app.state.session_factory) as session:
            await session.execute(
                text(
                    "INSERT INTO users (email, hashed_password, role, is_active, created_at, "
                    "updated_at) VALUES ('a@example.com', 'x', 'nonsense', true, :now, :now)"
                ),
                {"now": utcnow()},
            )
