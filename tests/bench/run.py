"""`make bench`: our app against a bare Starlette + asyncpg baseline, on PostgreSQL.

    python -m tests.bench.run [--quick] [--seconds N] [--connections N]

1. Creates and migrates `bench_<random>`, seeds one member with 10,000 leads in SQL.
2. Serves our app (one uvicorn worker, pinned to core 0) and drives get, list (limit 50),
   update and create phases with wrk (pinned to core 1); then the same against
   `data_layer_app.py` (our crud and schemas without FastAPI: the ceiling any app on this
   data layer can reach) and `baseline_app.py` (bare Starlette + asyncpg). Prints req/s,
   p50, p99, errors and requests per server CPU-second, each as a ratio of the baseline
   measured in this run (ratios survive a noisy machine).
3. Adds 990,000 leads of other owners and compares the member's first page with the 10k case.
4. Logs in from 32 clients at once and reports the server's peak RSS growth.

The database and every process are removed at the end, also on error or Ctrl-C.
"""

import argparse
import asyncio
import dataclasses
import secrets
import sys
import tempfile
import time
import urllib.parse
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend.app.core.security import PasswordHasher
from tests.bench import database
from tests.bench.harness import Server, WrkResult, free_port, run_server, run_wrk, sample_rss

PHASES = ["get", "list", "update", "create"]  # create last: it grows the table
MEMBER_PASSWORD = "bench-password-123"  # a throwaway account in a throwaway database
# Targets (issue 10), each a ratio measured in this run: requests per server CPU-second
# against the bare baseline, and against our own data layer with no FastAPI; the tail.
BASE_RATIO_TARGET = 0.35
DATA_LAYER_RATIO_TARGET = 0.75
TAIL_RATIO_TARGET = 2.5  # p99 / p50
FLAT_MIB = 8  # how much the login run's second-half RSS peak may exceed the first half's


@dataclass(frozen=True)
class Options:
    """How long and how hard to drive each phase, and how big the tables get."""

    seconds: float
    warmup_seconds: float
    connections: int
    member_leads: int
    total_leads: int
    login_seconds: float


@dataclass(frozen=True)
class Phase:
    """One measured phase: wrk's figures and the server CPU time it cost."""

    name: str
    wrk: WrkResult
    cpu_seconds: float

    @property
    def per_cpu_second(self) -> float:
        """Requests served per second of server CPU time."""
        return self.wrk.requests / max(self.cpu_seconds, 0.01)


@dataclass(frozen=True)
class Context:
    """What every phase needs: the member's token and lead ids, and the options."""

    options: Options
    token: str
    first_id: int
    last_id: int

    def wrk_env(self) -> dict[str, str]:
        """Environment for the Lua scripts."""
        return {
            "BENCH_TOKEN": self.token,
            "BENCH_FIRST_ID": str(self.first_id),
            "BENCH_LAST_ID": str(self.last_id),
            "BENCH_LOGIN_FORM": urllib.parse.urlencode(
                {"username": database.MEMBER_EMAIL, "password": MEMBER_PASSWORD}
            ),
        }


def measure(server: Server, ctx: Context, script: str, seconds: float | None = None) -> Phase:
    """Warm up, then run one wrk phase and read the server's CPU time around it."""
    opts = ctx.options
    env = ctx.wrk_env()
    run_wrk(script, server.url, seconds=opts.warmup_seconds, connections=opts.connections, env=env)
    cpu_before = server.cpu_seconds()
    result = run_wrk(
        script, server.url, seconds=seconds or opts.seconds, connections=opts.connections, env=env
    )
    return Phase(script, result, server.cpu_seconds() - cpu_before)


def app_server(dsn: str, secret_key: str, work_dir: Path) -> AbstractContextManager[Server]:
    """Our app, as `make run` serves it: the CLI, one worker, no migrations, quiet logs."""
    port = free_port()
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": database.app_url(dsn),
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": secret_key,
        "REDIS_URL": "",
    }
    argv = [sys.executable, "-m", "backend.app.cli", "serve", "--no-migrate", "--workers", "1"]
    return run_server("app", argv, env, port, work_dir)


def baseline_server(dsn: str, secret_key: str, work_dir: Path) -> AbstractContextManager[Server]:
    """The bare Starlette + asyncpg yardstick, under the same uvicorn settings."""
    port = free_port()
    argv = _uvicorn_argv("tests.bench.baseline_app:app", port)
    env = {"DATABASE_URL": dsn, "SECRET_KEY": secret_key}
    return run_server("baseline", argv, env, port, work_dir)


def data_layer_server(dsn: str, secret_key: str, work_dir: Path) -> AbstractContextManager[Server]:
    """Our crud functions and schemas behind bare Starlette routes: the data layer's ceiling."""
    port = free_port()
    argv = _uvicorn_argv("tests.bench.data_layer_app:app", port)
    env = {"DATABASE_URL": database.app_url(dsn), "SECRET_KEY": secret_key, "REDIS_URL": ""}
    return run_server("data-layer", argv, env, port, work_dir)


def _uvicorn_argv(app: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


# Measured in this order; "app" and "baseline" are required by print_table.
SERVERS = {"app": app_server, "data layer": data_layer_server, "baseline": baseline_server}


def login(server: Server) -> str:
    """Return a bearer token for the member, from our app's token endpoint."""
    response = httpx.post(
        server.url + "/api/v1/auth/token",
        data={"username": database.MEMBER_EMAIL, "password": MEMBER_PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def run_bench(opts: Options) -> int:
    """Run every part of the benchmark; return the exit status."""
    started = time.monotonic()
    secret_key = secrets.token_urlsafe(48)
    hashed = asyncio.run(PasswordHasher().hash(MEMBER_PASSWORD))
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, database.bench_database() as dsn:
        work_dir = Path(tmp)
        _, first_id, last_id = asyncio.run(
            database.seed_member(dsn, hashed_password=hashed, leads=opts.member_leads)
        )
        print(f"seeded {opts.member_leads:,} leads for the member ({first_id}..{last_id})")

        with app_server(dsn, secret_key, work_dir) as server:
            ctx = Context(opts, login(server), first_id, last_id)
        results: dict[str, dict[str, Phase]] = {}
        for label, serve in SERVERS.items():
            with serve(dsn, secret_key, work_dir) as server:
                results[label] = {name: measure(server, ctx, name) for name in PHASES}
            asyncio.run(database.reset_leads(dsn, last_seeded_id=last_id))
        print_table(results)

        with app_server(dsn, secret_key, work_dir) as server:
            small = measure(server, ctx, "list")
            others = opts.total_leads - opts.member_leads
            seeding = time.monotonic()
            asyncio.run(
                database.seed_other_owners(dsn, leads=others, spread_seconds=opts.member_leads)
            )
            print(f"\nadded {others:,} leads of other owners in {time.monotonic() - seeding:.0f} s")
            large = measure(server, ctx, "list")
            print_scale(small, large, opts)
            print_memory(server, ctx)
    print(f"\nbench finished in {time.monotonic() - started:.0f} s")
    return 0


def print_table(results: dict[str, dict[str, Phase]]) -> None:
    """Print each phase for every server, as ratios of the baseline, then the verdicts."""
    print(
        f"\n{'phase':<8}{'server':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'req/CPU-s':>11}{'x base req/s':>14}{'x base req/CPU-s':>18}"
    )
    base = results["baseline"]
    for name in PHASES:
        for label, phases in results.items():
            phase, yardstick = phases[name], base[name]
            w = phase.wrk
            cpu_ratio = phase.per_cpu_second / yardstick.per_cpu_second
            print(
                f"{name:<8}{label:<12}{w.rps:>9.0f}{w.p50_ms:>9.1f}{w.p99_ms:>9.1f}"
                f"{w.errors:>8}{phase.per_cpu_second:>11.0f}"
                f"{w.rps / yardstick.wrk.rps:>14.2f}{cpu_ratio:>18.2f}"
            )
    print()
    for name in PHASES:
        print(f"{name:<8}" + "  ".join(phase_verdicts(results, name)))


def phase_verdicts(results: dict[str, dict[str, Phase]], name: str) -> list[str]:
    """The app's verdicts in one phase: against the baseline, the data layer, its tail."""
    app, layer, base = (results[label][name] for label in ("app", "data layer", "baseline"))
    to_base = app.per_cpu_second / base.per_cpu_second
    to_layer = app.per_cpu_second / layer.per_cpu_second
    tail = app.wrk.p99_ms / max(app.wrk.p50_ms, 0.01)
    ceiling = layer.per_cpu_second / base.per_cpu_second
    return [
        _verdict(to_base >= BASE_RATIO_TARGET, f"{to_base:.2f}x base >= {BASE_RATIO_TARGET}"),
        _verdict(
            to_layer >= DATA_LAYER_RATIO_TARGET,
            f"{to_layer:.2f}x data layer >= {DATA_LAYER_RATIO_TARGET}",
        ),
        _verdict(tail <= TAIL_RATIO_TARGET, f"p99 {tail:.1f}x p50 <= {TAIL_RATIO_TARGET}"),
        _verdict(app.wrk.errors == 0, f"{app.wrk.errors} errors"),
        f"(req/CPU-s; data layer {ceiling:.2f}x base)",
    ]


def print_scale(small: Phase, large: Phase, opts: Options) -> None:
    """Print the member's first page with 10k rows vs with the big table."""
    ratio = small.wrk.rps / large.wrk.rps
    print(f"first list page, {opts.member_leads:,} leads in the table: {_brief(small)}")
    print(f"first list page, {opts.total_leads:,} leads in the table: {_brief(large)}")
    print(_verdict(ratio <= 2, f"{opts.total_leads:,}-row case is {ratio:.2f}x slower (<= 2x)"))


def print_memory(server: Server, ctx: Context) -> None:
    """Log in from 32 clients at once; report the RSS growth and whether it levels off.

    Flat means the peak of the second half of the run is within `FLAT_MIB` of the first
    half's: memory that grows with the number of logins, not with the concurrency, fails.
    """
    opts = ctx.options
    time.sleep(1)
    before = server.rss_kib()
    with sample_rss(server) as samples:
        result = run_wrk(
            "login", server.url, seconds=opts.login_seconds, connections=32, env=ctx.wrk_env()
        )
    time.sleep(1)
    after = server.rss_kib()
    half = len(samples) // 2
    first_half, second_half = max([before, *samples[:half]]), max([before, *samples[half:]])
    print(
        f"\n32 concurrent logins: {result.rps:.0f} req/s, p99 {result.p99_ms:.0f} ms, "
        f"{result.errors} errors\nserver RSS: before {before / 1024:.0f} MiB, peak in the first "
        f"half {first_half / 1024:.0f} MiB, in the second half {second_half / 1024:.0f} MiB "
        f"(+{(max(first_half, second_half) - before) / 1024:.0f} MiB), after {after / 1024:.0f} MiB"
    )
    creep = (second_half - first_half) / 1024
    print(_verdict(creep <= FLAT_MIB, f"second half's peak {creep:+.0f} MiB (<= {FLAT_MIB})"))


def _brief(phase: Phase) -> str:
    w = phase.wrk
    return f"{w.rps:.0f} req/s, p50 {w.p50_ms:.1f} ms, p99 {w.p99_ms:.1f} ms, {w.errors} errors"


def _verdict(ok: bool, text: str) -> str:
    return f"[{'ok' if ok else 'MISSED'}] {text}"


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 s phases, 100k-row big table")
    parser.add_argument("--seconds", type=float, help="length of each measured phase")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    args = parser.parse_args(argv)
    if args.quick:
        opts = Options(2, 1, args.connections, 10_000, 100_000, 6)
    else:
        opts = Options(10, 2, args.connections, 10_000, 1_000_000, 30)
    if args.seconds:
        opts = dataclasses.replace(opts, seconds=args.seconds)
    return run_bench(opts)


if __name__ == "__main__":
    sys.exit(main())
