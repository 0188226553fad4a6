"""Command line: `python -m backend.app.cli {serve,migrate,worker,create-admin}`.

`serve` is what `make run` and the container run: it applies migrations (unless
`--no-migrate`), then serves the app with uvicorn on HOST:PORT from the settings, in
WEB_CONCURRENCY processes (`--workers` wins).
"""

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

import uvicorn
from alembic import command
from alembic.config import Config

from backend.app.core.audit_context import CLI, acting_as
from backend.app.core.config import Settings, get_settings
from backend.app.core.database import create_engine, create_session_factory, unit_of_work
from backend.app.core.errors import EmailTakenError
from backend.app.core.logging import configure_logging
from backend.app.core.security import PasswordHasher
from backend.app.crud import users as crud_users

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def migrate(settings: Settings, revision: str = "head") -> None:
    """Upgrade the database at `settings.database_url` to `revision`."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = settings.database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


async def create_admin(settings: Settings, *, email: str, password: str) -> None:
    """Create an admin user.

    Raises:
        EmailTakenError: a user with this email exists.
    """
    engine = create_engine(settings)
    try:
        with acting_as(CLI):
            async with unit_of_work(create_session_factory(engine)) as session:
                await crud_users.create_admin(
                    session, email=email, hashed_password=await PasswordHasher().hash(password)
                )
    finally:
        await engine.dispose()


def reset_multiproc_dir(directory: Path) -> None:
    """Create the metrics directory of the API processes, or empty it of a previous run's.

    This process must not import prometheus-client first (nor `backend.app.main` or the
    worker, which do): with PROMETHEUS_MULTIPROC_DIR set, it opens files there on import.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def serve(settings: Settings, *, run_migrations: bool, workers: int) -> None:
    """Migrate (optionally), then serve `backend.app.main:app` with uvicorn.

    Several processes share one metrics directory (PROMETHEUS_MULTIPROC_DIR), emptied here
    of a previous run's files.

    Raises:
        SystemExit: several processes with metrics served, but no PROMETHEUS_MULTIPROC_DIR
            (each process's /metrics would show its own figures only).
    """
    if settings.prometheus_multiproc_dir:
        reset_multiproc_dir(Path(settings.prometheus_multiproc_dir))
    elif workers > 1 and settings.metrics_served:
        raise SystemExit(
            f"{workers} API processes need PROMETHEUS_MULTIPROC_DIR (an empty directory of "
            "this host) for /metrics to add them up; or set METRICS_ENABLED=false."
        )
    if run_migrations:
        migrate(settings)
    uvicorn.run(
        "backend.app.main:app",
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the command line (also used to check docker-compose.yml)."""
    parser = argparse.ArgumentParser(prog="python -m backend.app.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="migrate, then serve on HOST:PORT")
    serve_cmd.add_argument("--no-migrate", action="store_true", help="skip migrations")
    serve_cmd.add_argument(
        "--workers", type=int, default=None, help="API processes (default: WEB_CONCURRENCY)"
    )
    sub.add_parser("migrate", help="upgrade the database to the latest revision")
    sub.add_parser("worker", help="run the worker (sends queued texts etc.) until SIGTERM")
    admin_cmd = sub.add_parser("create-admin", help="create an admin user")
    admin_cmd.add_argument("--email", required=True)
    admin_cmd.add_argument("--password", help="prompted for when omitted")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; return the exit status."""
    args = build_parser().parse_args(argv)

    settings = get_settings()
    if args.command == "serve":
        workers = settings.web_concurrency if args.workers is None else args.workers
        serve(settings, run_migrations=not args.no_migrate, workers=workers)
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "worker":
        from backend.app.worker import run_worker_process  # not for `serve`: see above

        configure_logging(settings.log_level)
        run_worker_process(settings)
    else:
        password = args.password or getpass.getpass("Password for the new admin: ")
        if not 8 <= len(password) <= 128:
            print("The password must be 8-128 characters.", file=sys.stderr)
            return 2
        try:
            asyncio.run(create_admin(settings, email=args.email, password=password))
        except EmailTakenError:
            print(f"A user with email {args.email} already exists.", file=sys.stderr)
            return 1
        print(f"Admin {args.email} created.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
