"""The audit trail's session hooks and its append-only table, on both backends."""

from datetime import timedelta

import pytest
from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.exc import DBAPIError

from backend.app.core.audit import MAX_TEXT_LENGTH, is_secret_column
from backend.app.core.audit_context import acting_as, current_audit_context
from backend.app.core.database import unit_of_work
from backend.app.crud.audit import prune_audit_events
from backend.app.models import AuditEvent, Base, Lead, Message, SmsUsage, User
from backend.app.models.base import utcnow
from backend.app.models.message import MessageDirection, MessageStatus
from tests.querycount import QueryLog


async def _owner(app) -> int:
    async with app.state.session_factory.begin() as session:
        user = User(email="owner@example.com", hashed_password="x")
        session.add(user)
        await session.flush()
        return user.id


# example:lead start
async def _leads(app, owner_id: int, *names: str) -> list[int]:
    async with app.state.session_factory.begin() as session:
        leads = [Lead(name=name, owner_id=owner_id) for name in names]
        session.add_all(leads)
        await session.flush()
        return [lead.id for lead in leads]


# example:lead end


async def _rows(app, entity_type: str = "lead") -> list[AuditEvent]:
    async with app.state.session_factory() as session:
        query = select(AuditEvent).where(AuditEvent.entity_type == entity_type)
        return list(await session.scalars(query.order_by(AuditEvent.id)))


def test_every_model_is_audited_but_the_bookkeeping_tables() -> None:
    unaudited = {m.class_.__name__ for m in Base.registry.mappers if not m.class_.__audited__}
    assert unaudited == {"AuditEvent", "IdempotencyKey", "SmsUsage", "StripeEvent"}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("hashed_password", True),
        ("password", True),
        ("api_token", True),
        ("client_secret", True),
        ("claim_token", True),
        ("provider_message_id", False),
        ("keyboard_layout", False),
        ("hashtag", False),
    ],
)
def test_secret_columns_are_known_by_the_words_of_their_name(name: str, secret: bool) -> None:
    assert is_secret_column(name) is secret


# example:lead start
async def test_a_flush_rolled_back_leaves_no_row(client, app):
    owner_id = await _owner(app)
    async with app.state.session_factory() as session:
        session.add(Lead(name="Gone", owner_id=owner_id))
        await session.flush()
        await session.rollback()
        await session.commit()  # the session lives on; the dropped rows must not come back
    assert await _rows(app) == []


# example:lead end


# example:lead start
async def test_a_rolled_back_savepoint_drops_only_its_rows(client, app):
    owner_id = await _owner(app)
    async with app.state.session_factory.begin() as session:
        kept = Lead(name="Kept", owner_id=owner_id)
        session.add(kept)
        await session.flush()
        savepoint = await session.begin_nested()
        session.add(Lead(name="Undone", owner_id=owner_id))
        await session.flush()
        await savepoint.rollback()
    [row] = await _rows(app)
    assert (row.action, row.entity_id, row.actor) == ("create", kept.id, "system")


# example:lead end


# example:lead start
async def test_a_transactions_rows_go_in_one_insert_at_commit(client, app):
    owner_id = await _owner(app)
    async with QueryLog(app.state.engine) as log, app.state.session_factory.begin() as session:
        lead = Lead(name="Ada", owner_id=owner_id)
        session.add(lead)
        await session.flush()
        lead.status = "contacted"
        await session.flush()
        lead.notes = "n" * 5000  # flushed by the commit
    inserts = [sql for sql in log.statements if sql.startswith("INSERT INTO audit_events")]
    assert len(inserts) == 1
    rows = await _rows(app)
    assert [row.action for row in rows] == ["create", "update", "update"]
    notes = rows[2].changes["notes"]["new"]
    assert len(notes) == MAX_TEXT_LENGTH
    assert notes.endswith("…")


# example:lead end


# example:lead start
async def test_bulk_updates_record_each_row_they_change(client, app):
    owner_id = await _owner(app)
    ids = await _leads(app, owner_id, "A", "B", "C")
    async with app.state.session_factory.begin() as session:
        await session.execute(update(Lead).where(Lead.id == ids[2]).values(status="lost"))
    async with app.state.session_factory.begin() as session:
        await session.execute(update(Lead).where(Lead.owner_id == owner_id).values(status="lost"))
        table = Lead.__table__
        await session.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(name=bindparam("b_name")),
            [{"b_id": ids[0], "b_name": "A2"}, {"b_id": ids[1], "b_name": "B"}],
        )
        await session.execute(update(Lead).where(Lead.id == ids[2]).values(name=Lead.name + "!"))
        await session.execute(  # rows named by another column than the id
            update(table).where(table.c.name == bindparam("b_name")).values(source="import"),
            [{"b_name": "A2"}, {"b_name": "nobody"}],
        )
        await session.execute(  # ORM bulk UPDATE by primary key: no WHERE at all
            update(Lead), [{"id": ids[1], "notes": "n1"}, {"id": ids[2], "notes": "n2"}]
        )

    changes = [(row.entity_id, row.changes) for row in await _rows(app) if row.action == "update"]

    assert changes == [
        (ids[2], {"status": {"old": "new", "new": "lost"}}),
        (ids[0], {"status": {"old": "new", "new": "lost"}}),
        (ids[1], {"status": {"old": "new", "new": "lost"}}),
        (ids[0], {"name": {"old": "A", "new": "A2"}}),  # B's name did not change: no row
        (ids[2], {"name": {"old": "C", "new": "C!"}}),
        (ids[0], {"source": {"old": None, "new": "import"}}),
        (ids[1], {"notes": {"old": None, "new": "n1"}}),
        (ids[2], {"notes": {"old": None, "new": "n2"}}),
    ]


# example:lead end


# example:lead start
async def test_a_bulk_delete_records_what_each_row_held(client, app):
    owner_id = await _owner(app)
    ids = await _leads(app, owner_id, "A", "B")
    async with app.state.session_factory.begin() as session:
        await session.execute(delete(Lead).where(Lead.id.in_(ids)))
    deleted = [(row.entity_id, row.changes) for row in await _rows(app) if row.action == "delete"]
    assert [entity_id for entity_id, _ in deleted] == ids
    assert deleted[1][1] == {
        "owner_id": {"old": owner_id, "new": None},
        "name": {"old": "B", "new": None},
        "status": {"old": "new", "new": None},
    }


# example:lead end


# example:lead start
async def test_bookkeeping_changes_cost_no_statement_and_no_row(client, app):
    owner_id = await _owner(app)
    [lead_id] = await _leads(app, owner_id, "A")
    async with app.state.session_factory.begin() as session:
        session.add(SmsUsage(user_id=owner_id))
        session.add(
            Message(
                subject_type="leads",
                subject_id=lead_id,
                direction=MessageDirection.OUTBOUND,
                status=MessageStatus.QUEUED,
                body="Hi",
                phone="+14155550100",
            )
        )
    async with QueryLog(app.state.engine) as log, app.state.session_factory.begin() as session:
        await session.execute(update(Message).values(attempts=Message.attempts + 1))
    assert len(log) == 1  # the UPDATE alone: no read before or after, no audit INSERT
    assert await _rows(app, "sms_usage") == []
    assert [row.action for row in await _rows(app, "message")] == ["create"]


# example:lead end


async def test_the_actor_comes_from_the_context_and_is_restored(client, app):
    assert current_audit_context().actor == "system"
    with acting_as("cli"):
        owner_id = await _owner(app)
    assert current_audit_context().actor == "system"
    [row] = await _rows(app, "user")
    assert (row.actor, row.entity_id, row.request_id) == ("cli", owner_id, None)


async def _seed_events(app, ages: list[timedelta]) -> None:
    now = utcnow()
    async with app.state.session_factory.begin() as session:
        session.add_all(
            AuditEvent(actor="system", action="update", entity_type="lead", occurred_at=now - age)
            for age in ages
        )


async def test_the_prune_deletes_only_events_before_the_cutoff(client, app):
    await _seed_events(app, [timedelta(days=400), timedelta(days=366), timedelta(days=364)])
    async with unit_of_work(app.state.session_factory) as session:
        deleted = await prune_audit_events(session, before=utcnow() - timedelta(days=365))
    assert deleted == 2
    async with app.state.session_factory() as session:
        [left] = (await session.scalars(select(AuditEvent.occurred_at))).all()
    assert left > utcnow() - timedelta(days=365)


async def _prune_then(app, statement: str) -> None:
    async with unit_of_work(app.state.session_factory) as session:
        await prune_audit_events(session, before=utcnow())
        await session.execute(text(statement))


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"],
    ids=["update", "delete"],
)
async def test_postgresql_refuses_to_change_or_delete_an_event(
    client, app, backend_name, statement
):
    if backend_name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    await _seed_events(app, [timedelta(days=1)])
    with pytest.raises(DBAPIError, match="audit_events is append-only"):
        async with app.state.engine.begin() as conn:
            await conn.execute(text(statement))
    with pytest.raises(DBAPIError, match="audit_events is append-only"):
        await _prune_then(app, statement)  # the prune is allowed, not what follows it
    async with app.state.session_factory() as session:
        assert len((await session.scalars(select(AuditEvent.actor))).all()) == 1
