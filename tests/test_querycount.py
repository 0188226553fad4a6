"""`tests/querycount.py` counts the statements of its own block, and nothing else."""

import asyncio

from fastapi import FastAPI
from sqlalchemy import text

from tests.querycount import QueryLog


async def run_select(app: FastAPI, marker: int) -> None:
    async with app.state.engine.connect() as connection:
        await connection.execute(text(f"SELECT {marker}"))


async def test_the_log_keeps_the_blocks_statements_in_order(app: FastAPI) -> None:
    async with QueryLog(app.state.engine) as log:
        await run_select(app, 1)
        await run_select(app, 2)
    await run_select(app, 3)

    assert log.statements == ["SELECT 1", "SELECT 2"]
    assert len(log) == 2
    assert log.report() == "1. SELECT 1\n2. SELECT 2"


async def test_work_another_task_does_meanwhile_is_not_counted(app: FastAPI) -> None:
    go = asyncio.Event()

    async def elsewhere() -> None:  # like a background worker polling during a request
        await go.wait()
        await run_select(app, 7)

    other = asyncio.create_task(elsewhere())
    async with QueryLog(app.state.engine) as log:
        go.set()
        await run_select(app, 1)
        await other
        await asyncio.create_task(run_select(app, 2))  # started by the block: counted

    assert log.statements == ["SELECT 1", "SELECT 2"]
