"""End to end, as `make run` works on SQLite: the API process sends texts in the background,
and the Twilio stand-in posts signed status callbacks back to it over real HTTP."""

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from backend.app.cli import migrate
from backend.app.core.config import Settings
from backend.app.main import create_app
from tests.conftest import run_in_thread
from tests.fakes.twilio_fake import CallbackPlan
from tests.fakes.twilio_fixtures import twilio_settings

PASSWORD = "correct horse battery"


@contextmanager
def serving(make: Callable[[str], Settings]) -> Iterator[tuple[str, Settings]]:
    """Serve our app on a free port in a thread; `make(base_url)` builds its settings."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make(base_url)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        assert thread.is_alive()
        time.sleep(0.02)
    try:
        yield base_url, settings
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


async def _texting_user(http: httpx.AsyncClient) -> tuple[dict[str, str], int]:
    await http.post("/api/v1/auth/register", json={"email": "a@example.com", "password": PASSWORD})
    token = await http.post(
        "/api/v1/auth/token", data={"username": "a@example.com", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    lead = await http.post(
        "/api/v1/leads", json={"name": "Grace", "phone": "+14155550100"}, headers=headers
    )
    return headers, lead.json()["id"]


async def _wait_for_status(http, path, headers, *wanted: str, within: float = 15.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        [message] = (await http.get(path, headers=headers)).json()["items"]
        if message["status"] in wanted:
            return message
        assert time.monotonic() < deadline, f"still {message['status']}, wanted {wanted}"
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("wrong_token", [False, True])
async def test_make_run_sends_scheduled_texts_and_follows_callbacks(
    tmp_path: Path, twilio_fake, wrong_token
):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    twilio_fake.callbacks = CallbackPlan(
        outcome="delivered", reorder=True, duplicate=True, wrong_token=wrong_token
    )

    def make(base_url: str) -> Settings:
        settings = twilio_settings(
            twilio_fake, database_url, public_base_url=base_url, worker_in_app=None
        )
        run_in_thread(migrate, settings)
        return settings

    with serving(make) as (base_url, settings):
        assert settings.run_worker_in_app  # on by default with SQLite
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            headers, lead_id = await _texting_user(http)
            send_at = datetime.now(UTC) + timedelta(seconds=1)
            path = f"/api/v1/leads/{lead_id}/messages"
            created = await http.post(
                path, json={"body": "See you", "send_at": send_at.isoformat()}, headers=headers
            )
            assert created.json()["status"] == "scheduled"
            sent = await _wait_for_status(http, path, headers, "sent", "delivered")
            assert datetime.fromisoformat(sent["sent_at"]) >= send_at
            if wrong_token:
                deadline = time.monotonic() + 10
                while len(twilio_fake.callback_log) < 4:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                assert {status for _, _, status in twilio_fake.callback_log} == {403}
                final = await _wait_for_status(http, path, headers, "sent")
            else:
                final = await _wait_for_status(http, path, headers, "delivered")
    assert final["provider_message_id"] == next(iter(twilio_fake.messages))
    assert len(twilio_fake.creates()) == 1
