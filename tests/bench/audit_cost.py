"""What the audit trail costs a write: lead creates and updates, and the SMS worker's sends.

    python -m tests.bench.audit_cost [--requests 300] [--rounds 6] [--backend postgresql]

Serves the app in-process (httpx over ASGI, so no network or second process adds noise)
on a fresh database: a PostgreSQL `bench_<random>` (dropped at the end) or a SQLite file.
Each round sends N `POST /api/v1/leads` then N `PATCH` of those leads, then lets the SMS
worker send N queued texts (to the console sender, so only its database work is timed),
once with the app's audited sessions and once with plain ones
(`create_session_factory(..., audited=False)`), the order alternating between rounds so
drift and warm-up hit both alike. Prints the median time per request (per text) of each
and the relative cost of the trail (the median of the rounds' on/off ratios).
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvloop
from fastapi import FastAPI
from sqlalchemy import insert

from backend.app.cli import migrate
from backend.app.core.config import Settings
from backend.app.core.database import create_session_factory
from backend.app.integrations.twilio import ConsoleSmsSender
from backend.app.main import create_app
from backend.app.models import Message
from backend.app.models.base import utcnow
from backend.app.worker import SmsWorker
from tests.bench import database

PASSWORD = "bench-password-123"  # a throwaway account in a throwaway database


def _settings(url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=url,
        log_level="WARNING",
        worker_in_app=False,
        worker_concurrency=50,
        sms_daily_limit=0,
    )


async def _member(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"email": "audit-bench@example.com", "password": PASSWORD}
    (await client.post("/api/v1/auth/register", json=body)).raise_for_status()
    form = {"username": body["email"], "password": PASSWORD}
    token = (await client.post("/api/v1/auth/token", data=form)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def _phase(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str], count: int
) -> list[float]:
    """Create and update `count` leads, send `count` texts; return the seconds of one each."""
    ids: list[int] = []
    started = time.perf_counter()
    for n in range(count):
        body = {"name": f"Lead {n}", "phone": "+14155550100", "notes": "x" * 300}
        response = await client.post("/api/v1/leads", json=body, headers=headers)
        ids.append(response.json()["id"])
    created = time.perf_counter()
    for lead_id in ids:
        body = {"status": "contacted", "notes": "y" * 300}
        response = await client.patch(f"/api/v1/leads/{lead_id}", json=body, headers=headers)
        response.raise_for_status()
    updated = time.perf_counter()
    await _queue_texts(app, ids[0], count)
    worker = SmsWorker(
        settings=app.state.settings,
        session_factory=app.state.session_factory,
        sender=ConsoleSmsSender(),
    )
    queued = time.perf_counter()
    while await worker.run_once():
        pass
    sent = time.perf_counter()
    return [(created - started) / count, (updated - created) / count, (sent - queued) / count]


async def _queue_texts(app: FastAPI, lead_id: int, count: int) -> None:
    """Queue `count` due texts to the lead in one statement (bookkeeping, not measured)."""
    now = utcnow()
    row = {
        "lead_id": lead_id,
        "direction": "outbound",
        "status": "queued",
        "body": "Hi",
        "phone": "+14155550100",
        "due_at": now,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    async with app.state.engine.begin() as conn:
        await conn.execute(insert(Message.__table__), [row] * count)


async def measure(app: FastAPI, requests: int, rounds: int) -> dict[str, list[list[float]]]:
    """Alternate rounds with the trail on and off; return seconds per request of each."""
    audited = app.state.session_factory
    plain = create_session_factory(app.state.engine, audited=False)
    results: dict[str, list[list[float]]] = {"on": [], "off": []}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        headers = await _member(client)
        await _phase(app, client, headers, 20)  # warm up both code paths
        app.state.session_factory = plain
        await _phase(app, client, headers, 20)
        for n in range(rounds):
            order = ["on", "off"] if n % 2 == 0 else ["off", "on"]
            for mode in order:
                app.state.session_factory = audited if mode == "on" else plain
                results[mode].append(await _phase(app, client, headers, requests))
    app.state.session_factory = audited
    return results


@contextmanager
def _database(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        with database.bench_database() as dsn:
            yield database.app_url(dsn)
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        migrate(_settings(url))
        yield url


async def _run(url: str, requests: int, rounds: int) -> dict[str, list[list[float]]]:
    app = create_app(_settings(url))
    async with app.router.lifespan_context(app):
        return await measure(app, requests, rounds)


def report(backend: str, results: dict[str, list[list[float]]]) -> None:
    """Print the median ms per create, update and send, on and off, and the trail's cost.

    The cost is the median of each round's on/off ratio: the two halves of a round run
    back to back, so a busy machine slows both alike.
    """
    rounds = len(results["on"])
    print(f"\nAudit trail cost, {backend}, in-process, {rounds} rounds (medians)")
    print(f"{'phase':>8} {'off ms':>8} {'on ms':>8} {'cost':>7} {'min':>7} {'max':>7}")
    for index, phase in enumerate(("create", "update", "send")):
        off = [r[index] * 1000 for r in results["off"]]
        on = [r[index] * 1000 for r in results["on"]]
        ratios = [b / a - 1 for a, b in zip(off, on, strict=True)]
        print(
            f"{phase:>8} {statistics.median(off):>8.3f} {statistics.median(on):>8.3f}"
            f" {statistics.median(ratios):>+7.1%} {min(ratios):>+7.1%} {max(ratios):>+7.1%}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    with _database(args.backend) as url:
        results = uvloop.run(_run(url, args.requests, args.rounds))
    report(args.backend, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
