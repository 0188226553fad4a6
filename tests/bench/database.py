"""The benchmark's PostgreSQL database: create, seed in bulk SQL, reset, drop."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy.engine import make_url

from backend.app.cli import migrate
from backend.app.core.config import Settings

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# example:lead start
MEMBER_EMAIL = "bench-member@example.com"
OTHER_OWNERS = 99
# example:lead end

# example:lead start
# Leads of one owner, created one second apart going back from now (newest = highest id).
SEED_LEADS = """
INSERT INTO leads (owner_id, name, phone, email, status, source, notes,
                   created_at, updated_at)
SELECT $1, 'Lead ' || i, '+1415555' || lpad((i % 10000)::text, 4, '0'),
       'lead' || i || '@example.com',
       (ARRAY['new', 'contacted', 'qualified', 'won', 'lost'])[1 + i % 5], 'bench', NULL,
       now() - make_interval(secs => $2 - i), now() - make_interval(secs => $2 - i)
FROM generate_series(1, $2) AS i
"""
# example:lead end

# example:lead start
# Leads of the other owners, spread over the same hours as the member's so they interleave.
SEED_OTHER_LEADS = """
INSERT INTO leads (owner_id, name, phone, email, status, source, notes,
                   created_at, updated_at)
SELECT owners.ids[1 + i % array_length(owners.ids, 1)], 'Other ' || i, NULL,
       'other' || i || '@example.com', 'new', 'bench', NULL,
       now() - make_interval(secs => random() * $2), now() - make_interval(secs => random() * $2)
FROM generate_series(1, $1) AS i,
     (SELECT array_agg(id) AS ids FROM users WHERE email LIKE 'bench-other-%') AS owners
"""
# example:lead end

# example:lead start
INSERT_USER = """
INSERT INTO users (email, hashed_password, full_name, role, is_active, created_at, updated_at)
VALUES ($1, $2, 'Bench User', 'member', true, now(), now()) RETURNING id
"""
# example:lead end


def asyncpg_dsn(sqlalchemy_or_plain_url: str) -> str:
    """Return the plain `postgresql://` form of a database URL."""
    url = make_url(sqlalchemy_or_plain_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@contextmanager
def bench_database() -> Iterator[str]:
    """Create and migrate `bench_<random>`; yield its plain DSN; drop it afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        dsn = make_url(asyncpg_dsn(ADMIN_URL)).set(database=name).render_as_string(False)
        settings = Settings(_env_file=None, database_url=app_url(dsn))
        migrate(settings)
        yield dsn
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def app_url(dsn: str) -> str:
    """Return the SQLAlchemy (asyncpg driver) URL of a plain DSN."""
    url = make_url(dsn).set(drivername="postgresql+asyncpg")
    return url.render_as_string(hide_password=False)


async def _admin_execute(sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(ADMIN_URL), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# example:lead start
async def seed_member(dsn: str, *, hashed_password: str, leads: int) -> tuple[int, int, int]:
    """Insert the member and `leads` leads of theirs.

    Returns:
        The member's id and the first and last id of their leads.
    """
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        member_id = await conn.fetchval(INSERT_USER, MEMBER_EMAIL, hashed_password)
        await conn.execute(SEED_LEADS, member_id, leads)
        first, last = await conn.fetchrow(
            "SELECT min(id), max(id) FROM leads WHERE owner_id = $1", member_id
        )
        await conn.execute("VACUUM ANALYZE leads")
    finally:
        await conn.close()
    return member_id, first, last


async def seed_other_owners(dsn: str, *, leads: int, spread_seconds: int) -> None:
    """Insert `OTHER_OWNERS` users and `leads` leads spread over them, then ANALYZE."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for n in range(OTHER_OWNERS):
            await conn.execute(INSERT_USER, f"bench-other-{n}@example.com", "not-a-hash")
        await conn.execute(SEED_OTHER_LEADS, leads, float(spread_seconds), timeout=600)
        await conn.execute("VACUUM ANALYZE leads", timeout=600)
    finally:
        await conn.close()


async def reset_leads(dsn: str, *, last_seeded_id: int) -> None:
    """Delete the leads the create phase added and vacuum what the update phase left."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute("DELETE FROM leads WHERE id > $1", last_seeded_id)
        await conn.execute("VACUUM ANALYZE leads", timeout=600)
    finally:
        await conn.close()


# example:lead end
