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
from sqlalchemy import select

from backend.app.cli import migrate
from backend.app.core.config import Settings
from backend.app.core.database import create_engine, create_session_factory
from backend.app.crud import messages as crud_messages
from backend.app.main import create_app
from backend.app.models import Message, User
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


async def _queue_a_text(http: httpx.AsyncClient, settings: Settings, send_at: datetime) -> int:
    """Register a user through the API, then queue a text of theirs as any endpoint would."""
    email = "a@example.com"
    await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine).begin() as session:
            sender = await session.scalar(select(User).where(User.email == email))
            assert sender is not None
            message = await crud_messages.queue_text(
                session,
                to="+14155550100",
                body="See you",
                send_at=send_at,
                about=None,
                sender=sender,
                daily_limit=settings.sms_daily_limit,
            )
            assert message.status == "scheduled"
            return message.id
    finally:
        await engine.dispose()


async def _wait_for_status(settings, message_id, *wanted: str, within: float = 15.0) -> Message:
    engine = create_engine(settings)
    deadline = time.monotonic() + within
    try:
        while True:
            async with create_session_factory(engine)() as session:
                message = await session.get_one(Message, message_id)
            if message.status in wanted:
                return message
            assert time.monotonic() < deadline, f"still {message.status}, wanted {wanted}"
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


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
            send_at = datetime.now(UTC) + timedelta(seconds=1)
            message_id = await _queue_a_text(http, settings, send_at)
            sent = await _wait_for_status(settings, message_id, "sent", "delivered")
            assert sent.sent_at is not None
            assert sent.sent_at >= send_at
            if wrong_token:
                deadline = time.monotonic() + 10
                while len(twilio_fake.callback_log) < 4:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                assert {status for _, _, status in twilio_fake.callback_log} == {403}
                final = await _wait_for_status(settings, message_id, "sent")
            else:
                final = await _wait_for_status(settings, message_id, "delivered")
    assert final.provider_message_id == next(iter(twilio_fake.messages))
    assert len(twilio_fake.creates()) == 1
