"""The command line: migrate and create-admin, run as real processes."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server import REPO_ROOT, serve

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.app.cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_create_admin_makes_an_admin_who_can_log_in(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    assert cli("migrate", env=env).returncode == 0

    created = cli(
        "create-admin", "--email", "Boss@Example.com", "--password", "s3cret-pass", env=env
    )
    assert created.returncode == 0, created.stderr
    again = cli("create-admin", "--email", "boss@example.com", "--password", "s3cret-pass", env=env)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    too_short = cli("create-admin", "--email", "x@example.com", "--password", "short", env=env)
    assert too_short.returncode == 2

    with serve(env, tmp_path / "server.log") as server:
        token = httpx.post(
            f"{server.base_url}/api/v1/auth/token",
            data={"username": "boss@example.com", "password": "s3cret-pass"},
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        me = httpx.get(f"{server.base_url}/api/v1/users/me", headers=headers)
    assert me.json()["role"] == "admin"
    assert me.json()["email"] == "boss@example.com"
