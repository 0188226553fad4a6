"""The revision `make remove-example` appends: it drops the lead tables and the texts about
leads, keeps every other row, and its downgrade gives back the table revision 0006 made.

The revision is written, as the removal writes it, after copies of today's revisions in a
temporary folder, and run on both backends.
"""

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from tests.conftest import run_in_thread
from tests.migrations.test_migrations import _run, alembic_config
from tools.remove_example.remove import VERSIONS, _append_revision

ROOT = Path(__file__).resolve().parents[2]


def _config_with_the_revision(url: str, tmp_path: Path) -> tuple[Any, str]:
    """An Alembic config whose versions are today's plus the appended one; and today's head."""
    versions = tmp_path / VERSIONS
    versions.mkdir(parents=True)
    for path in (ROOT / VERSIONS).glob("*.py"):
        shutil.copy2(path, versions)
    _append_revision(tmp_path)
    config = alembic_config(url)
    [head] = ScriptDirectory.from_config(alembic_config(url)).get_heads()
    config.set_main_option("version_locations", str(versions))
    return config, head


def _leads_table(connection: Connection) -> dict[str, Any] | None:
    schema = inspect(connection)
    if "leads" not in schema.get_table_names():
        return None
    return {
        "columns": [
            (c["name"], str(c["type"]), c["nullable"]) for c in schema.get_columns("leads")
        ],
        "indexes": sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in schema.get_indexes("leads")
        ),
        "foreign_keys": [
            (fk["name"], fk["constrained_columns"], fk["referred_table"], fk["options"])
            for fk in schema.get_foreign_keys("leads")
        ],
        "primary_key": schema.get_pk_constraint("leads")["constrained_columns"],
        "checks": sorted(c["sqltext"] for c in schema.get_check_constraints("leads")),
    }


def _insert_rows(connection: Connection) -> None:
    now = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    connection.execute(
        text(
            "INSERT INTO users (id, email, hashed_password, role, is_active, created_at, "
            "updated_at) VALUES (1, 'a@example.com', 'x', 'member', true, :now, :now)"
        ),
        {"now": now},
    )
    connection.execute(
        text(
            "INSERT INTO leads (id, owner_id, name, status, created_at, updated_at) "
            "VALUES (10, 1, 'Ada', 'new', :now, :now)"
        ),
        {"now": now},
    )
    for message_id, subject_type, subject_id in [(100, "leads", 10), (101, "users", 1)]:
        connection.execute(
            text(
                "INSERT INTO messages (id, subject_type, subject_id, created_by_id, direction, "
                "status, body, phone, attempts, created_at, updated_at) VALUES (:id, :type, "
                ":subject, 1, 'outbound', 'sent', 'Hi', '+14155550100', 1, :now, :now)"
            ),
            {"id": message_id, "type": subject_type, "subject": subject_id, "now": now},
        )
    connection.commit()


def _messages(connection: Connection) -> list[tuple[int, str]]:
    return [tuple(row) for row in connection.execute(text("SELECT id, subject_type FROM messages"))]


async def test_the_revision_drops_the_leads_and_their_texts_and_downgrades_to_0006(
    empty_database_url: str, tmp_path: Path
) -> None:
    config, head = _config_with_the_revision(empty_database_url, tmp_path)
    run_in_thread(command.upgrade, config, head)
    before = await _run(empty_database_url, _leads_table)
    assert before is not None
    await _run(empty_database_url, _insert_rows)

    run_in_thread(command.upgrade, config, "head")
    assert await _run(empty_database_url, _leads_table) is None
    assert await _run(empty_database_url, _messages) == [(101, "users")]

    run_in_thread(command.downgrade, config, head)
    assert await _run(empty_database_url, _leads_table) == before
    run_in_thread(command.downgrade, config, "base")  # and the history below still runs
