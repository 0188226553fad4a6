"""The unit of work turns every kind of constraint violation into our error, on both backends."""

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, text
from sqlalchemy.exc import IntegrityError

from backend.app.core.database import create_engine, unit_of_work
from backend.app.core.db_errors import translate_integrity_error
from backend.app.core.errors import (
    ConflictError,
    EmailTakenError,
    InvalidFieldError,
    LeadHasPaymentsError,
    NotFoundError,
)
from backend.app.models import Base, Lead, User
from backend.app.models.base import utcnow
from tests.conftest import make_settings


async def _user(app, email: str = "owner@example.com") -> int:
    async with unit_of_work(app.state.session_factory) as session:
        user = User(email=email, hashed_password="x", role="member", is_active=True)
        session.add(user)
        await session.flush()
        return user.id


async def _lead(app, owner_id: int) -> int:
    async with unit_of_work(app.state.session_factory) as session:
        lead = Lead(name="Ada", owner_id=owner_id)
        session.add(lead)
        await session.flush()
        return lead.id


async def test_a_unique_violation_with_a_declared_error_raises_it(client, app):
    await _user(app, "taken@example.com")
    with pytest.raises(EmailTakenError):
        await _user(app, "taken@example.com")


async def test_an_insert_referring_to_a_missing_row_is_not_found(client, app):
    with pytest.raises(NotFoundError) as caught:
        await _lead(app, owner_id=987654)
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
            ForeignKey(
                "parents.id", ondelete="RESTRICT", info={"referenced": LeadHasPaymentsError}
            ),
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
    assert isinstance(translate_integrity_error(caught.value, metadata), LeadHasPaymentsError)


async def test_deleting_a_referred_row_without_a_declared_error_is_a_conflict(
    client, app, backend_name
):
    owner = await _user(app)
    await _lead(app, owner)
    with pytest.raises(ConflictError) as caught:
        async with unit_of_work(app.state.session_factory) as session:
            await session.execute(text("DELETE FROM users WHERE id = :id"), {"id": owner})
    assert type(caught.value) is ConflictError
    # SQLite does not name the foreign key; several refer to users, so it cannot say which.
    assert caught.value.message == (
        "This user cannot be deleted: a lead refers to it."
        if backend_name == "postgresql"
        else "This record cannot be deleted: another record refers to it."
    )


async def test_a_null_in_a_not_null_column_is_a_validation_error(client, app):
    owner = await _user(app)
    with pytest.raises(InvalidFieldError) as caught:
        async with unit_of_work(app.state.session_factory) as session:
            await session.execute(
                text(
                    "INSERT INTO leads (owner_id, name, status, created_at, updated_at) "
                    "VALUES (:owner, NULL, 'new', :now, :now)"
                ),
                {"owner": owner, "now": utcnow()},
            )
    assert caught.value.details == [
        {"loc": ["body", "name"], "msg": "may not be null", "type": "value_error"}
    ]


async def test_a_check_violation_is_a_validation_error(client, app):
    owner = await _user(app)
    with pytest.raises(InvalidFieldError):
        async with unit_of_work(app.state.session_factory) as session:
            await session.execute(
                text(
                    "INSERT INTO leads (owner_id, name, status, created_at, updated_at) "
                    "VALUES (:owner, 'Ada', 'nonsense', :now, :now)"
                ),
                {"owner": owner, "now": utcnow()},
            )
