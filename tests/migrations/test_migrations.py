"""Upgrading an empty database to head yields exactly the models' schema; downgrade works."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from backend.app.cli import ALEMBIC_INI
from backend.app.core.database import create_engine
from backend.app.models import Base
from tests.conftest import make_settings, run_in_thread


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def _schema_drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _run(url: str, fn):  # type: ignore[no-untyped-def]
    engine = create_engine(make_settings(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def test_there_is_exactly_one_head() -> None:
    heads = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"


async def test_upgrade_to_head_matches_the_models(empty_database_url: str) -> None:
    run_in_thread(command.upgrade, alembic_config(empty_database_url), "head")

    assert await _run(empty_database_url, _schema_drift) == []
    tables = await _run(empty_database_url, _table_names)
    assert tables == {*Base.metadata.tables, "alembic_version"}


async def test_downgrade_to_base_removes_every_table(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    run_in_thread(command.upgrade, config, "head")
    run_in_thread(command.downgrade, config, "base")

    assert await _run(empty_database_url, _table_names) == {"alembic_version"}
    run_in_thread(command.upgrade, config, "head")  # and it comes back cleanly
    assert await _run(empty_database_url, _schema_drift) == []
