"""Revision 0004 carries a lead tracker's rows over to texts and payments about any record."""

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Connection, text

from tests.conftest import run_in_thread
from tests.migrations.test_migrations import _run, alembic_config

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _insert_0003_rows(connection: Connection) -> None:
    """A user, two leads on one number (one opted out), a text each and a payment."""
    rows = {"now": NOW}
    connection.execute(
        text(
            "INSERT INTO users (id, email, hashed_password, role, is_active, created_at, "
            "updated_at) VALUES (1, 'a@example.com', 'x', 'member', true, :now, :now)"
        ),
        rows,
    )
    for lead_id, opted_out in [(10, True), (11, False), (12, False)]:
        phone = None if lead_id == 12 else "+14155550100"
        connection.execute(
            text(
                "INSERT INTO leads (id, owner_id, name, phone, status, sms_opted_out, "
                "created_at, updated_at) VALUES (:id, 1, 'Ada', :phone, 'new', :opted, :now, "
                ":now)"
            ),
            {**rows, "id": lead_id, "phone": phone, "opted": opted_out},
        )
    for message_id, lead_id in [(100, 10), (101, 11)]:
        connection.execute(
            text(
                "INSERT INTO messages (id, lead_id, direction, status, body, phone, attempts, "
                "created_at, updated_at) VALUES (:id, :lead, 'outbound', 'sent', 'Hi', "
                "'+14155550100', 1, :now, :now)"
            ),
            {**rows, "id": message_id, "lead": lead_id},
        )
    connection.execute(
        text(
            "INSERT INTO payments (id, lead_id, created_by_id, amount, currency, status, "
            "created_at, updated_at) VALUES (200, 11, 1, 500, 'usd', 'paid', :now, :now)"
        ),
        rows,
    )
    connection.commit()


def _carried_over(connection: Connection) -> dict[str, object]:
    def all_rows(sql: str) -> list[tuple[object, ...]]:
        return [tuple(row) for row in connection.execute(text(sql))]

    return {
        "messages": all_rows("SELECT id, subject_type, subject_id FROM messages ORDER BY id"),
        "payments": all_rows("SELECT id, subject_type, subject_id FROM payments ORDER BY id"),
        "opt_outs": all_rows("SELECT phone FROM sms_opt_outs"),
    }


def _lead_columns(connection: Connection) -> dict[str, object]:
    return {
        "messages": [
            tuple(r) for r in connection.execute(text("SELECT id, lead_id FROM messages"))
        ],
        "payments": [
            tuple(r) for r in connection.execute(text("SELECT id, lead_id FROM payments"))
        ],
        "opted_out": [
            tuple(r)
            for r in connection.execute(text("SELECT id, sms_opted_out FROM leads ORDER BY id"))
        ],
    }


async def test_upgrade_carries_rows_over_and_downgrade_brings_them_back(
    empty_database_url: str,
) -> None:
    config = alembic_config(empty_database_url)
    run_in_thread(command.upgrade, config, "0003")
    await _run(empty_database_url, _insert_0003_rows)

    run_in_thread(command.upgrade, config, "0004")
    assert await _run(empty_database_url, _carried_over) == {
        "messages": [(100, "leads", 10), (101, "leads", 11)],
        "payments": [(200, "leads", 11)],
        "opt_outs": [("+14155550100",)],  # the number, for every record that has it
    }

    run_in_thread(command.downgrade, config, "0003")
    assert await _run(empty_database_url, _lead_columns) == {
        "messages": [(100, 10), (101, 11)],
        "payments": [(200, 11)],
        "opted_out": [(10, True), (11, True), (12, False)],  # STOP came from their number
    }
