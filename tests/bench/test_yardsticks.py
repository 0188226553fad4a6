"""The benchmark's yardsticks do the work our app does, so their ratios are honest.

`make bench` divides our throughput by two other servers'. Those ratios only mean something
if each yardstick answers the same requests with the same results: the same leads, the same
page, the same change stored, and the same refusals (a bad token, another member's lead).
"""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from backend.app.core.config import get_settings
from tests.bench import baseline_app, data_layer_app
from tests.bench.database import asyncpg_dsn
from tests.conftest import client_for, make_settings, running_app
from tests.factories import AuthedUser, make_lead, make_member

YARDSTICKS = {"baseline": baseline_app.app, "data layer": data_layer_app.app}


@pytest.fixture
async def ours(postgresql_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Our app on the session's PostgreSQL database."""
    async with running_app(make_settings(postgresql_url)) as app, client_for(app) as client:
        yield client


@pytest.fixture(params=list(YARDSTICKS))
async def yardstick(
    request: pytest.FixtureRequest, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """One yardstick, configured as `tests/bench/run.py` serves it, on the same database."""
    secret = make_settings(postgresql_url).secret_key.get_secret_value()
    if request.param == "baseline":
        monkeypatch.setattr(baseline_app, "DATABASE_URL", asyncpg_dsn(postgresql_url))
        monkeypatch.setattr(baseline_app, "SECRET_KEY", secret)
    else:
        monkeypatch.setenv("DATABASE_URL", postgresql_url)
        monkeypatch.setenv("SECRET_KEY", secret)
        get_settings.cache_clear()
    app: Starlette = YARDSTICKS[request.param]
    try:
        async with app.router.lifespan_context(app), client_for(app) as client:  # type: ignore[arg-type]
            yield client
    finally:
        get_settings.cache_clear()


def comparable(lead: dict[str, Any]) -> dict[str, Any]:
    """The lead with its timestamps parsed (`Z` and `+00:00` are the same instant)."""
    return {
        key: datetime.fromisoformat(value) if key.endswith("_at") else value
        for key, value in lead.items()
    }


async def seeded_member(ours: httpx.AsyncClient) -> tuple[AuthedUser, list[dict[str, Any]]]:
    member = await make_member(ours)
    leads = [
        await make_lead(ours, member, phone="+14155550100", email=f"lead{i}@example.com")
        for i in range(3)
    ]
    return member, leads


async def test_get_answers_the_same_lead(ours, yardstick):
    member, leads = await seeded_member(ours)
    path = f"/api/v1/leads/{leads[1]['id']}"

    theirs = await yardstick.get(path, headers=member.headers)

    assert theirs.status_code == 200
    assert comparable(theirs.json()) == comparable(
        (await ours.get(path, headers=member.headers)).json()
    )


async def test_list_answers_the_same_page(ours, yardstick):
    member, _ = await seeded_member(ours)
    path = "/api/v1/leads?limit=50"

    theirs = (await yardstick.get(path, headers=member.headers)).json()
    mine = (await ours.get(path, headers=member.headers)).json()

    assert [comparable(lead) for lead in theirs.pop("items")] == [
        comparable(lead) for lead in mine.pop("items")
    ]
    assert theirs == mine == {"total": 3, "limit": 50, "offset": 0}


async def test_update_stores_the_change(ours, yardstick):
    member, leads = await seeded_member(ours)
    path = f"/api/v1/leads/{leads[0]['id']}"

    theirs = await yardstick.patch(
        path, json={"status": "contacted", "notes": "Called back."}, headers=member.headers
    )

    assert theirs.status_code == 200
    stored = (await ours.get(path, headers=member.headers)).json()
    assert comparable(theirs.json()) == comparable(stored)
    assert (stored["status"], stored["notes"]) == ("contacted", "Called back.")


async def test_create_stores_the_lead(ours, yardstick):
    member, _ = await seeded_member(ours)
    body = {"name": "Grace Hopper", "phone": "+14155550100", "email": "grace@example.com"}

    theirs = await yardstick.post("/api/v1/leads", json=body, headers=member.headers)

    assert theirs.status_code == 201
    stored = (await ours.get(f"/api/v1/leads/{theirs.json()['id']}", headers=member.headers)).json()
    assert comparable(theirs.json()) == comparable(stored)
    assert stored["owner_id"] == member.id


async def test_refuses_what_our_app_refuses(ours, yardstick):
    member, _ = await seeded_member(ours)
    other, others_leads = await seeded_member(ours)
    someone_elses = f"/api/v1/leads/{others_leads[0]['id']}"

    assert (await yardstick.get(someone_elses, headers=member.headers)).status_code == 404
    bad_token = {"Authorization": "Bearer not-a-token"}
    assert (await yardstick.get(someone_elses, headers=bad_token)).status_code == 401
    assert (await yardstick.get(someone_elses, headers=other.headers)).status_code == 200
