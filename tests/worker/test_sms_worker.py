"""The SMS worker against the Twilio stand-in, on both backends."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from backend.app.core.database import create_engine, create_session_factory
from backend.app.crud import messages as crud_messages
from backend.app.models import Message, SmsOptOut, User
from backend.app.models.message import MessageDirection, MessageStatus
from backend.app.worker import SmsWorker
from tests.factories import AuthedUser, make_member, queue_text
from tests.fakes.twilio_fake import FakeTwilio, Fault
from tests.fakes.twilio_fixtures import twilio_client, twilio_settings

PHONE = "+14155550100"


async def _queue(app, owner: AuthedUser, recipient: dict, body: str, **extra) -> dict:
    """Queue a text to the recipient's phone, about the recipient (a user record)."""
    message = await queue_text(
        app, owner, recipient["phone"], body, about_user=recipient["id"], **extra
    )
    return {"id": message.id}


async def _row(app, message_id) -> Message:
    async with app.state.session_factory() as session:
        row = await session.get(Message, message_id)
        assert row is not None
        return row


async def _setup(client) -> tuple[AuthedUser, dict]:
    """A sender, and the record texted: another user, reached at PHONE."""
    owner = await make_member(client)
    recipient = await make_member(client)
    return owner, {"id": recipient.id, "phone": PHONE}


def _worker(app, settings) -> SmsWorker:
    return SmsWorker(
        settings=settings, session_factory=app.state.session_factory, sender=twilio_client(settings)
    )


def _start_worker_process(
    fake: FakeTwilio, database_url: str, repo_root: Path, **env: str
) -> subprocess.Popen[bytes]:
    """Start `python -m backend.app.worker` against `fake`, as an operator would run it."""
    values = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": fake.base_url,
        "TWILIO_TIMEOUT_SECONDS": "20",  # the worker is still waiting when it is killed
        "TWILIO_MAX_RETRIES": "0",
        "WORKER_LEASE_SECONDS": "45",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    argv = [sys.executable, "-m", "backend.app.worker"]
    return subprocess.Popen(argv, cwd=repo_root, env=values)


async def _insert_queued(app, owner, recipient, count: int) -> list[int]:
    """Queue `count` texts to `recipient` straight in the table (the quota allows 200 a day)."""
    now = datetime.now(UTC)
    async with app.state.session_factory.begin() as session:
        rows = [
            Message(
                subject_type="users",
                subject_id=recipient["id"],
                created_by_id=owner.id,
                direction=MessageDirection.OUTBOUND,
                status=MessageStatus.QUEUED,
                body=f"text {n}",
                phone=recipient["phone"],
                due_at=now,
                created_at=now,
                updated_at=now,
            )
            for n in range(count)
        ]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def _expire_leases(app, ids: list[int]) -> None:
    """Let the leases of `ids` run out now, as they would WORKER_LEASE_SECONDS later."""
    async with app.state.session_factory.begin() as session:
        await session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == MessageStatus.SENDING)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_a_queued_message_is_sent_once(client, app, twilio_fake, database_url):
    owner, recipient = await _setup(client)
    queued = await _queue(app, owner, recipient, "Hello")
    settings = twilio_settings(twilio_fake, database_url)
    worker = _worker(app, settings)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    row = await _row(app, queued["id"])
    [request] = twilio_fake.creates()
    assert row.status == "sent"
    assert row.provider_message_id in twilio_fake.messages
    assert row.sent_at is not None
    assert (row.claim_token, row.lease_expires_at, row.error_code) == (None, None, None)
    assert request.form["To"] == PHONE
    assert request.form["StatusCallback"] == (
        f"http://127.0.0.1:8000/api/v1/webhooks/twilio/status?message_id={queued['id']}"
    )


async def test_a_scheduled_message_waits_for_send_at(client, app, twilio_fake, database_url):
    owner, recipient = await _setup(client)
    send_at = datetime.now(UTC) + timedelta(seconds=1.5)
    queued = await _queue(app, owner, recipient, "Later", send_at=send_at)
    worker = _worker(app, twilio_settings(twilio_fake, database_url))
    assert await worker.run_once() == 0
    assert (await _row(app, queued["id"])).status == "scheduled"
    await asyncio.sleep(max(0.0, (send_at - datetime.now(UTC)).total_seconds()) + 0.05)
    assert await worker.run_once() == 1
    row = await _row(app, queued["id"])
    assert row.status == "sent"
    assert row.sent_at >= send_at
    assert len(twilio_fake.creates()) == 1


async def test_5xx_backs_off_then_looks_up_before_sending_again(
    client, app, twilio_fake, database_url
):
    owner, recipient = await _setup(client)
    queued = await _queue(app, owner, recipient, "Hello")
    twilio_fake.faults.append(Fault(status=500))  # refused, not accepted
    worker = _worker(app, twilio_settings(twilio_fake, database_url))
    assert await worker.run_once() == 1
    row = await _row(app, queued["id"])
    assert (row.status, row.error_code, row.attempts) == ("queued", "sms_outcome_unknown", 1)
    assert row.outcome_unknown_since is not None
    assert row.due_at > datetime.now(UTC) + timedelta(seconds=0.1)  # backoff >= base / 2
    assert await worker.run_once() == 0  # not due yet
    await asyncio.sleep((row.due_at - datetime.now(UTC)).total_seconds() + 0.05)
    assert await worker.run_once() == 1
    row = await _row(app, queued["id"])
    assert row.status == "sent"
    assert [r.method for r in twilio_fake.requests] == ["POST", "GET", "POST"]
    assert len(twilio_fake.messages) == 1


async def test_5xx_after_twilio_accepted_is_adopted_not_resent(
    client, app, twilio_fake, database_url
):
    owner, recipient = await _setup(client)
    queued = await _queue(app, owner, recipient, "Hello")
    twilio_fake.faults.append(Fault(status=500, accept=True))  # the text went out anyway
    worker = _worker(app, twilio_settings(twilio_fake, database_url, sms_retry_base_seconds=0.1))
    assert await worker.run_once() == 1
    await asyncio.sleep(0.2)
    assert await worker.run_once() == 1
    row = await _row(app, queued["id"])
    [sid] = twilio_fake.messages
    assert (row.status, row.provider_message_id, row.error_code) == ("sent", sid, None)
    assert [r.method for r in twilio_fake.requests] == ["POST", "GET"]


async def test_a_lookup_stopped_by_its_page_cap_never_sends_again(
    client, app, twilio_fake, database_url
):
    owner, recipient = await _setup(client)
    queued = await _queue(app, owner, recipient, "Hello")
    twilio_fake.faults.append(Fault(status=500, accept=True))  # the text went out anyway
    settings = twilio_settings(
        twilio_fake,
        database_url,
        sms_max_attempts=3,
        sms_retry_base_seconds=0.05,
        sms_retry_max_seconds=0.1,
    )
    sender = twilio_client(settings, lookup_page_size=5, lookup_max_pages=2)
    worker = SmsWorker(settings=settings, session_factory=app.state.session_factory, sender=sender)
    try:
        assert await worker.run_once() == 1
        first = await _row(app, queued["id"])
        for n in range(10):  # then 10 newer texts to that number: more than 2 pages of 5
            twilio_fake.add_message(to=PHONE, body=f"newer {n}", created=datetime.now(UTC))
        for expected in ("queued", "failed"):  # tries 2 and 3: each lookup stops at the cap
            row = await _row(app, queued["id"])
            await asyncio.sleep(max(0.0, (row.due_at - datetime.now(UTC)).total_seconds()))
            assert await worker.run_once() == 1
            row = await _row(app, queued["id"])
            assert (row.status, row.error_code) == (expected, "sms_outcome_unknown")
            assert row.outcome_unknown_since == first.outcome_unknown_since
    finally:
        await sender.aclose()
    assert row.attempts == 3
    assert len(twilio_fake.creates()) == 1  # never sent blindly
    assert [r.method for r in twilio_fake.requests].count("GET") == 4  # 2 lookups of 2 pages


async def test_429_retries_in_the_client_then_in_the_worker(client, app, twilio_fake, database_url):
    owner, recipient = await _setup(client)
    queued = await _queue(app, owner, recipient, "Hello")
    twilio_fake.faults.append(Fault(status=429, code=20429, retry_after="1", count=2))
    settings = twilio_settings(twilio_fake, database_url, twilio_max_retries=1)
    worker = _worker(app, settings)
    assert await worker.run_once() == 1
    row = await _row(app, queued["id"])
    assert (row.status, row.error_code, row.outcome_unknown_since) == ("queued", "20429", None)
    assert row.due_at >= datetime.now(UTC) + timedelta(seconds=0.5)  # honours Retry-After
    await asyncio.sleep((row.due_at - datetime.now(UTC)).total_seconds() + 0.05)
    assert await worker.run_once() == 1
    assert (await _row(app, queued["id"])).status == "sent"
    assert [r.method for r in twilio_fake.requests] == ["POST", "POST", "POST"]  # no lookup


async def test_transient_failures_end_in_failed_after_max_attempts(
    client, app, twilio_fake, database_url
):
    owner, recipient = await _setup(client)
    queued = await _queue(app, owner, recipient, "Hello")
    twilio_fake.faults.append(Fault(status=429, code=20429, retry_after="0", count=100))
    settings = twilio_settings(
        twilio_fake,
        database_url,
        twilio_max_retries=0,
        sms_max_attempts=2,
        sms_retry_base_seconds=0.05,
    )
    worker = _worker(app, settings)
    assert await worker.run_once() == 1
    await asyncio.sleep(0.1)
    assert await worker.run_once() == 1
    row = await _row(app, queued["id"])
    assert (row.status, row.error_code, row.attempts) == ("failed", "20429", 2)
    assert row.error_message == "Injected fault."
    assert len(twilio_fake.creates()) == 2


async def test_opted_out_recipient_fails_at_once_and_opts_the_number_out(
    client, app, twilio_fake, database_url
):
    owner = await make_member(client)
    recipient = {"id": owner.id, "phone": "+15005550004"}  # Twilio's 21610 test number
    queued = await _queue(app, owner, recipient, "Hello")
    worker = _worker(app, twilio_settings(twilio_fake, database_url))
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    row = await _row(app, queued["id"])
    assert (row.status, row.error_code) == ("failed", "21610")
    assert row.error_message == "Attempt to send to unsubscribed recipient"
    assert len(twilio_fake.creates()) == 1
    async with app.state.session_factory() as session:
        assert await session.get(SmsOptOut, recipient["phone"]) is not None


async def test_a_number_opted_out_after_queuing_is_not_texted(
    client, app, twilio_fake, database_url
):
    owner, recipient = await _setup(client)
    queued = await _queue(app, owner, recipient, "Hello")
    async with app.state.session_factory.begin() as session:  # STOP arrived meanwhile
        session.add(SmsOptOut(phone=recipient["phone"]))
    assert await _worker(app, twilio_settings(twilio_fake, database_url)).run_once() == 1
    row = await _row(app, queued["id"])
    assert (row.status, row.error_code) == ("failed", "recipient_opted_out")
    assert twilio_fake.requests == []


async def test_a_text_deleted_with_its_record_while_in_flight(
    client, app, twilio_fake, database_url
):
    owner, recipient = await _setup(client)
    await _queue(app, owner, recipient, "Hello")
    twilio_fake.faults.append(Fault(delay=0.5, accept=True))
    worker = _worker(app, twilio_settings(twilio_fake, database_url))
    round_ = asyncio.create_task(worker.run_once())
    deadline = time.monotonic() + 5
    while not twilio_fake.creates():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    async with app.state.session_factory.begin() as session:  # as the entity's delete does
        record = await session.get_one(User, recipient["id"])
        await crud_messages.delete_texts_about(session, about=record)
    assert await asyncio.wait_for(round_, 10) == 1  # the vanished row is logged, not an error
    async with app.state.session_factory() as session:
        assert (await session.scalars(select(Message))).all() == []
    assert len(twilio_fake.messages) == 1


async def test_two_workers_racing_send_each_message_exactly_once(
    client, app, twilio_fake, database_url
):
    owner, recipient = await _setup(client)
    ids = [(await _queue(app, owner, recipient, f"text {n}"))["id"] for n in range(120)]
    settings = twilio_settings(twilio_fake, database_url, worker_concurrency=7)
    engines = [create_engine(settings) for _ in range(2)]
    workers = [
        SmsWorker(
            settings=settings,
            session_factory=create_session_factory(engine),
            sender=twilio_client(settings),
        )
        for engine in engines
    ]

    claimed_by = [0, 0]

    async def drain(index: int) -> None:
        while sum(claimed_by) < len(ids):
            claimed_by[index] += await workers[index].run_once()
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(asyncio.gather(drain(0), drain(1)), 60)
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(claimed_by) == 120
    assert all(count > 0 for count in claimed_by), claimed_by  # both really took part
    bodies = [r.form["Body"] for r in twilio_fake.creates()]
    assert sorted(bodies) == sorted(f"text {n}" for n in range(120))
    async with app.state.session_factory() as session:
        rows = (await session.scalars(select(Message).where(Message.id.in_(ids)))).all()
    assert {row.status for row in rows} == {"sent"}
    assert {row.provider_message_id for row in rows} == set(twilio_fake.messages)


@pytest.mark.slow
async def test_worker_killed_mid_send_loses_and_duplicates_nothing(
    client, app, twilio_fake, database_url, repo_root
):
    owner, recipient = await _setup(client)
    ids = [(await _queue(app, owner, recipient, f"text {n}"))["id"] for n in range(3)]
    twilio_fake.faults.append(Fault(delay=30, accept=True, count=3))  # accepted, answer late
    settings = twilio_settings(
        twilio_fake,
        database_url,
        twilio_timeout_seconds=0.5,
        twilio_max_retries=0,
        worker_lease_seconds=1.5,
    )
    process = _start_worker_process(twilio_fake, database_url, repo_root)
    try:
        deadline = time.monotonic() + 20
        while len(twilio_fake.creates()) < 3:
            assert time.monotonic() < deadline, "the worker never sent"
            assert process.poll() is None
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    rows = [await _row(app, message_id) for message_id in ids]
    assert {row.status for row in rows} == {"sending"}  # left behind by the dead worker
    await _expire_leases(app, ids)  # as if the 45 s lease had run out
    assert await _worker(app, settings).run_once() == 3
    rows = [await _row(app, message_id) for message_id in ids]
    assert {row.status for row in rows} == {"sent"}
    assert {row.provider_message_id for row in rows} == set(twilio_fake.messages)
    assert len(twilio_fake.creates()) == 3  # nothing sent twice
    assert {row.outcome_unknown_since is None for row in rows} == {True}


@pytest.mark.slow
async def test_worker_killed_mid_drain_to_one_number_sends_each_text_once(
    client, app, twilio_fake, database_url, repo_root
):
    owner, recipient = await _setup(client)
    ids = await _insert_queued(app, owner, recipient, 300)
    # Ten rounds of 10 go out and are recorded; the 11th is accepted but answered late, and
    # the worker is killed while it waits: 10 texts sent, their rows left `sending`.
    twilio_fake.faults += [Fault(count=100), Fault(delay=30, accept=True, count=10)]
    process = _start_worker_process(twilio_fake, database_url, repo_root, WORKER_CONCURRENCY="10")
    try:
        deadline = time.monotonic() + 20
        while len(twilio_fake.messages) < 110:
            assert time.monotonic() < deadline, "the worker never reached its 11th round"
            assert process.poll() is None
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    rows = [await _row(app, message_id) for message_id in ids]
    assert Counter(row.status for row in rows) == {"sent": 100, "sending": 10, "queued": 190}
    stale = [row.id for row in rows if row.status == "sending"]

    settings = twilio_settings(twilio_fake, database_url)
    sender = twilio_client(settings, lookup_page_size=40)  # 300 texts: 8 pages a lookup
    worker = SmsWorker(settings=settings, session_factory=app.state.session_factory, sender=sender)
    try:
        # The restarted worker drains the queued rest first (190 newer texts to that number),
        # then the stale rows' leases run out and each is looked up before any new try.
        drained, deadline = 0, time.monotonic() + 30
        while claimed := await worker.run_once():
            drained += claimed
            assert time.monotonic() < deadline, "the queued rest was never drained"
        assert drained == 190
        await _expire_leases(app, stale)
        assert await asyncio.wait_for(worker.run_once(), 30) == 10
        assert await worker.run_once() == 0
    finally:
        await sender.aclose()

    creates = len(twilio_fake.creates())
    assert creates == 300  # each text once: the 10 were adopted, not sent again
    rows = [await _row(app, message_id) for message_id in ids]
    assert {row.status for row in rows} == {"sent"}
    assert len({row.provider_message_id for row in rows}) == 300
    assert {row.provider_message_id for row in rows} == set(twilio_fake.messages)
    assert sorted(r.form["Body"] for r in twilio_fake.creates()) == sorted(
        f"text {n}" for n in range(300)
    )
    pages = [r for r in twilio_fake.requests if r.method == "GET"]
    assert len(pages) == 10 * 8  # every lookup read the whole window, page after page
