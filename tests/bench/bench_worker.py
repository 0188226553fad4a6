"""SMS worker benchmark: drain 10,000 due messages through one, then two worker processes.

Creates a fresh PostgreSQL database (as `make bench` does: `database.bench_database`, dropped
at the end), serves the Twilio stand-in in its own process, queues N due messages with
distinct bodies, runs `python -m backend.app.worker` processes against both and reports
messages/s and how many texts the stand-in received twice (must be 0).
Run: `.venv/bin/python -m tests.bench.bench_worker [--messages 10000] [--profile out.txt]`.

In the same run it measures a yardstick: the same number of texts posted straight to the
stand-in with bare httpx at the worker's concurrency and connection cap (no database, no
retries). The targets are ratios measured in that one run, so they survive a slower or
busier machine, each printed with a met/missed verdict:
- one worker >= 0.8x the yardstick (the worker's own cost: claims, records, spans, metrics);
- two workers >= 1.4x one worker (claims do not serialise the workers);
- sent twice: 0 (exactly once, whatever the number of workers).
`--profile PATH` runs the one-worker drain under pyinstrument (`pip install pyinstrument`;
not a dependency of the project) and writes its report to PATH.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import uvloop

from backend.app.integrations.twilio.twilio import MAX_CONNECTIONS
from tests.bench import database
from tests.fakes.twilio_fake import ACCOUNT_SID, AUTH_TOKEN
from tests.server import free_port, stop

REPO_ROOT = Path(__file__).resolve().parents[2]
ONE_WORKER_TARGET = 0.8  # x the bare-httpx yardstick
TWO_WORKERS_TARGET = 1.4  # x one worker


async def _queue(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute("TRUNCATE messages, users RESTART IDENTITY CASCADE")
        await conn.execute(
            "INSERT INTO users (email, hashed_password, role, is_active, created_at, updated_at)"
            " VALUES ('bench@example.com', 'x', 'member', true, now(), now())"
        )
        await conn.execute(
            "INSERT INTO messages (created_by_id, direction, status, body, phone,"
            " due_at, attempts, created_at, updated_at)"
            " SELECT 1, 'outbound', 'queued', 'bench ' || n, '+14155550100', now(), 0,"
            " now(), now() FROM generate_series(1, $1) AS n",
            count,
        )
    finally:
        await conn.close()


async def _progress(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'sent') AS sent,"
            " count(*) FILTER (WHERE status NOT IN ('sent', 'queued', 'sending')) AS other"
            " FROM messages"
        )
        assert row is not None
        return int(row["sent"]), int(row["other"])
    finally:
        await conn.close()


async def _sent_span(dsn: str) -> float:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        span = await conn.fetchval(
            "SELECT extract(epoch FROM max(sent_at) - min(sent_at)) FROM messages"
        )
    finally:
        await conn.close()
    return float(span or 0)


async def _post_directly(fake_url: str, count: int, concurrency: int) -> float:
    """Post `count` texts to the stand-in with bare httpx; return texts per second."""
    numbers = iter(range(count))
    auth = httpx.BasicAuth(ACCOUNT_SID, AUTH_TOKEN)
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    connections = min(concurrency, MAX_CONNECTIONS)  # the worker's client caps its pool too
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=fake_url, auth=auth, limits=limits) as client:

        async def post_until_done() -> None:
            for n in numbers:
                form = {"To": "+14155550100", "From": "+15005550006", "Body": f"direct {n}"}
                response = await client.post(path, data=form, timeout=30)
                response.raise_for_status()

        started = time.monotonic()
        await asyncio.gather(*(post_until_done() for _ in range(concurrency)))
        return count / (time.monotonic() - started)


def _drain(
    dsn: str, fake_url: str, workers: int, count: int, profile: Path | None = None
) -> dict[str, float]:
    asyncio.run(_queue(dsn, count))
    httpx.post(f"{fake_url}/_fake/reset", timeout=10).raise_for_status()
    env = {
        **os.environ,
        "DATABASE_URL": database.app_url(dsn),
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": fake_url,
        "WORKER_POLL_SECONDS": "0.05",
        "WORKER_CONCURRENCY": str(_concurrency()),
    }
    started = time.monotonic()
    argv = [sys.executable, "-m", "backend.app.worker"]
    if profile is not None:
        profiler = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile)]
        argv = [*profiler, "-m", "backend.app.worker"]
    processes = [subprocess.Popen(argv, cwd=REPO_ROOT, env=env) for _ in range(workers)]
    try:
        deadline = started + 600
        while True:
            sent, other = asyncio.run(_progress(dsn))
            if sent + other >= count:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"drain stalled at {sent}/{count}")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        for process in processes:
            stop(process)
    state = httpx.get(f"{fake_url}/_fake/state", timeout=10).json()
    span = asyncio.run(_sent_span(dsn))
    return {
        "workers": workers,
        "sent": sent,
        "failed_or_other": other,
        "wall_seconds": elapsed,
        "per_second_wall": count / elapsed,
        "per_second_sending": count / max(span, 1e-6),
        "sent_twice": state["creates"] - state["distinct_bodies"],
        "provider_messages": state["messages"],
    }


def _concurrency() -> int:
    return int(os.environ.get("WORKER_CONCURRENCY", "50"))


def _serve_fake() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "-m", "tests.fakes.twilio_fake", "--port", str(port)]
    process = subprocess.Popen(argv, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/_fake/state", timeout=1).raise_for_status()
            return process, url
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop(process)
                raise RuntimeError("the Twilio stand-in did not start") from None
            time.sleep(0.1)


def run(count: int, profile: Path | None = None) -> int:
    """Run the benchmark with `count` messages; return 0 if nothing was lost or sent twice."""
    with database.bench_database() as dsn:
        fake, fake_url = _serve_fake()
        try:
            direct = uvloop.run(_post_directly(fake_url, count, _concurrency()))  # as the worker
            results = [_drain(dsn, fake_url, n, count) for n in (1, 2)]
            if profile is not None:
                _drain(dsn, fake_url, 1, count, profile)
        finally:
            stop(fake)
    print(f"\nSMS worker: {count} due messages against the Twilio stand-in (PostgreSQL)")
    print(f"yardstick: bare httpx straight to the stand-in, no database: {direct:.0f} msg/s")
    print(
        f"{'workers':>8} {'msg/s (wall)':>13} {'msg/s (sending)':>16} {'x yardstick':>12}"
        f" {'sent twice':>11}"
    )
    for r in results:
        print(
            f"{r['workers']:>8} {r['per_second_wall']:>13.0f} {r['per_second_sending']:>16.0f}"
            f" {r['per_second_wall'] / direct:>12.2f} {r['sent_twice']:>11}"
        )
    one, two = results[0]["per_second_wall"], results[1]["per_second_wall"]
    twice = sum(int(r["sent_twice"]) for r in results)
    _verdict("one worker", one / direct, ONE_WORKER_TARGET, "x the yardstick")
    _verdict("two workers", two / one, TWO_WORKERS_TARGET, "x one worker")
    print(f"target: sent twice = 0: {twice} -> {'met' if twice == 0 else 'MISSED'}")
    if profile is not None:
        print(f"profile of one worker's drain: {profile}")
    ok = all(r["sent_twice"] == 0 and r["sent"] == count for r in results)
    return 0 if ok else 1


def _verdict(what: str, ratio: float, target: float, unit: str) -> None:
    met = "met" if ratio >= target else "MISSED"
    print(f"target: {what} >= {target}{unit}: {ratio:.2f}{unit} -> {met}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument report path")
    args = parser.parse_args()
    return run(args.messages, args.profile)


if __name__ == "__main__":
    sys.exit(main())
