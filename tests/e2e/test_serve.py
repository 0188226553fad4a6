"""The real server, started by `make run`'s own entry point, over real HTTP on both databases."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import RunningServer, serve, stop

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "first.admin@example.com"
ADMIN_PASSWORD = "first-admin-password"
# example:lead start
SECRET_NAME = "Zebulon Quarterhouse"
# example:lead end


@pytest.fixture
def server(empty_database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    env = {
        "DATABASE_URL": empty_database_url,
        "FIRST_ADMIN_EMAIL": ADMIN_EMAIL,
        "FIRST_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LOG_LEVEL": "INFO",
    }
    with serve(env, tmp_path / "server.log") as running:
        yield running


def test_serve_migrates_creates_the_first_admin_and_serves_the_api(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

        me = http.get("/api/v1/users/me", headers=auth)
        assert me.json()["role"] == "admin"

        # example:lead start
        created = http.post("/api/v1/leads", json={"name": SECRET_NAME}, headers=auth)
        assert created.status_code == 201
        assert http.get(created.headers["Location"], headers=auth).json()["name"] == SECRET_NAME
        # example:lead end
        assert http.get("/health/ready").json() == {"status": "ok"}
        assert http.get("/docs").status_code == 200


def test_every_request_is_logged_as_one_json_line_without_secrets(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        http.post("/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        http.get("/health", headers={"X-Request-ID": "trace-me-123"})
    stop(server.process)

    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "app.access"]
    health = next(line for line in access if line["request_id"] == "trace-me-123")
    assert health["path"] == "/health"
    assert health["status"] == 200
    assert health["method"] == "GET"
    assert isinstance(health["duration_ms"], float | int)
    assert "user_id" in health
    assert ADMIN_PASSWORD not in server.logs()


def test_serve_shuts_down_gracefully_on_sigterm(server: RunningServer) -> None:
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is the expected code.
    assert stop(server.process) in (0, -15)
    assert "Application shutdown complete" in server.logs()
