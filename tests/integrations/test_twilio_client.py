"""The Twilio client against the local stand-in, over real HTTP."""

import itertools
import logging
import re
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from backend.app.core.errors import (
    SmsOutcomeUnknownError,
    SmsProviderError,
    SmsProviderUnavailableError,
    SmsRecipientOptedOutError,
)
from backend.app.integrations.twilio import ConsoleSmsSender, is_valid_signature, opt_keyword
from tests.fakes.twilio_fake import Fault
from tests.fakes.twilio_fixtures import FROM_NUMBER, open_twilio_client, twilio_settings

SID = re.compile(r"^SM[0-9a-f]{32}$")
TO = "+14155550100"
CALLBACK = "https://api.example.com/api/v1/webhooks/twilio/status?message_id=7"


async def test_send_posts_a_form_with_basic_auth_and_returns_the_sid(twilio_fake):
    async with open_twilio_client(twilio_settings(twilio_fake)) as client:
        sent = await client.send(to=TO, body="Hello", status_callback=CALLBACK)
    assert SID.match(sent.sid)
    assert sent.status == "queued"
    [request] = twilio_fake.creates()
    assert request.form == {
        "To": TO,
        "Body": "Hello",
        "From": FROM_NUMBER,
        "StatusCallback": CALLBACK,
    }
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"].startswith("Basic ")
    assert list(twilio_fake.messages) == [sent.sid]


async def test_messaging_service_replaces_from(twilio_fake):
    settings = twilio_settings(twilio_fake, twilio_messaging_service_sid="MG" + "1" * 32)
    async with open_twilio_client(settings) as client:
        sent = await client.send(to=TO, body="Hi", status_callback=None)
    [request] = twilio_fake.creates()
    assert "From" not in request.form
    assert request.form["MessagingServiceSid"] == "MG" + "1" * 32
    assert sent.status == "accepted"


async def test_429_is_retried_no_sooner_than_retry_after(twilio_fake):
    twilio_fake.faults.append(Fault(status=429, code=20429, retry_after="1", count=2))
    async with open_twilio_client(twilio_settings(twilio_fake)) as client:
        sent = await client.send(to=TO, body="Hello", status_callback=None)
    creates = twilio_fake.creates()
    assert len(creates) == 3
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(creates)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert list(twilio_fake.messages) == [sent.sid]


async def test_429_gives_up_after_the_configured_retries(twilio_fake):
    twilio_fake.faults.append(Fault(status=429, code=20429, retry_after="0", count=10))
    async with open_twilio_client(twilio_settings(twilio_fake, twilio_max_retries=1)) as client:
        with pytest.raises(SmsProviderUnavailableError) as caught:
            await client.send(to=TO, body="Hello", status_callback=None)
    assert caught.value.provider_code == 20429
    assert len(twilio_fake.creates()) == 2
    assert twilio_fake.messages == {}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_never_resent_by_the_client(twilio_fake, status):
    twilio_fake.faults.append(Fault(status=status, count=5))
    async with open_twilio_client(twilio_settings(twilio_fake)) as client:
        with pytest.raises(SmsOutcomeUnknownError):
            await client.send(to=TO, body="Hello", status_callback=None)
    assert len(twilio_fake.creates()) == 1


async def test_opted_out_recipient_is_not_retried(twilio_fake):
    async with open_twilio_client(twilio_settings(twilio_fake)) as client:
        with pytest.raises(SmsRecipientOptedOutError) as caught:
            await client.send(to="+15005550004", body="Hello", status_callback=None)
    assert caught.value.provider_code == 21610
    assert len(twilio_fake.creates()) == 1


@pytest.mark.parametrize(
    ("to", "code"), [("+15005550001", 21211), ("+15005550009", 21614), ("4155550100", 21211)]
)
async def test_permanent_errors_carry_the_provider_code(twilio_fake, to, code):
    async with open_twilio_client(twilio_settings(twilio_fake)) as client:
        with pytest.raises(SmsProviderError) as caught:
            await client.send(to=to, body="Hello", status_callback=None)
    assert type(caught.value) is SmsProviderError
    assert caught.value.provider_code == code
    assert len(twilio_fake.creates()) == 1


async def test_bad_credentials_are_permanent(twilio_fake):
    settings = twilio_settings(twilio_fake, twilio_auth_token="not-the-token")
    async with open_twilio_client(settings) as client:
        with pytest.raises(SmsProviderError) as caught:
            await client.send(to=TO, body="Hello", status_callback=None)
    assert (caught.value.status, caught.value.provider_code) == (401, 20003)
    assert len(twilio_fake.creates()) == 1


async def test_timeout_is_enforced_and_the_outcome_is_unknown(twilio_fake):
    twilio_fake.faults.append(Fault(delay=3.0, accept=True))
    started = time.monotonic()
    settings = twilio_settings(twilio_fake, twilio_timeout_seconds=0.3)
    async with open_twilio_client(settings) as client:
        with pytest.raises(SmsOutcomeUnknownError):
            await client.send(to=TO, body="Hello", status_callback=None)
    assert time.monotonic() - started < 1.5
    assert len(twilio_fake.creates()) == 1  # not re-sent: it may have gone out


async def test_connection_refused_is_retried_then_unavailable(twilio_fake):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = twilio_settings(
        twilio_fake,
        twilio_api_base_url=f"http://127.0.0.1:{closed_port}",
        twilio_max_retry_wait_seconds=0.2,
    )
    started = time.monotonic()
    async with open_twilio_client(settings) as client:
        with pytest.raises(SmsProviderUnavailableError):
            await client.send(to=TO, body="Hello", status_callback=None)
    assert time.monotonic() - started < 3


async def test_find_messages_lists_recent_texts_to_a_number(twilio_fake):
    before = datetime.now(UTC) - timedelta(seconds=2)
    async with open_twilio_client(twilio_settings(twilio_fake)) as client:
        first = await client.send(to=TO, body="One", status_callback=None)
        await client.send(to="+14155550199", body="Other", status_callback=None)
        found = await client.find_messages(to=TO, created_after=before)
        later = await client.find_messages(to=TO, created_after=datetime.now(UTC) + timedelta(1))
    assert [(m.sid, m.body, m.to) for m in found] == [(first.sid, "One", TO)]
    assert later == []


async def test_find_messages_retries_a_failed_lookup(twilio_fake):
    twilio_fake.faults.append(Fault(status=503, method="GET"))
    settings = twilio_settings(twilio_fake, twilio_max_retry_wait_seconds=0.2)
    async with open_twilio_client(settings) as client:
        assert await client.find_messages(to=TO, created_after=datetime.now(UTC)) == []
    assert [r.method for r in twilio_fake.requests] == ["GET", "GET"]


def _pages_read(fake) -> list[dict[str, str]]:
    """The query of every list request the stand-in answered, in order."""
    return [r.form for r in fake.requests if r.method == "GET"]


async def test_find_messages_finds_a_text_however_many_were_sent_since(twilio_fake):
    before = datetime.now(UTC) - timedelta(seconds=2)
    async with open_twilio_client(twilio_settings(twilio_fake), lookup_page_size=25) as client:
        target = await client.send(to=TO, body="The one", status_callback=None)
        for n in range(120):  # newer texts to the same number, and one elsewhere
            twilio_fake.add_message(to=TO, body=f"newer {n}", created=datetime.now(UTC))
        twilio_fake.add_message(to="+14155550199", body="other", created=datetime.now(UTC))
        found = await client.find_messages(to=TO, created_after=before)
    assert len(found) == 121
    assert found[-1].sid == target.sid  # the oldest, on the fifth page
    assert {m.to for m in found} == {TO}
    pages = _pages_read(twilio_fake)
    assert [page["PageSize"] for page in pages] == ["25"] * 5
    assert "PageToken" not in pages[0]
    assert all(page["PageToken"].startswith("PA") for page in pages[1:])


async def test_find_messages_stops_at_the_time_window(twilio_fake):
    now = datetime.now(UTC)
    long_ago = now - timedelta(hours=1)
    for n in range(60):  # delivered an hour ago: outside the window
        twilio_fake.add_message(to=TO, body=f"old {n}", created=long_ago, sent=long_ago)
    for n in range(30):
        twilio_fake.add_message(to=TO, body=f"new {n}", created=now, sent=now)
    async with open_twilio_client(twilio_settings(twilio_fake), lookup_page_size=25) as client:
        found = await client.find_messages(to=TO, created_after=now - timedelta(minutes=5))
    assert sorted(m.body for m in found) == sorted(f"new {n}" for n in range(30))
    assert len(_pages_read(twilio_fake)) == 2  # the second page reached the old ones


async def test_find_messages_reads_on_past_a_text_created_before_but_sent_within(twilio_fake):
    now = datetime.now(UTC)
    long_ago = now - timedelta(hours=1)
    twilio_fake.add_message(to=TO, body="old", created=long_ago, sent=long_ago)
    twilio_fake.add_message(to=TO, body="queued long", created=long_ago, sent=now)
    twilio_fake.add_message(to=TO, body="never sent", created=long_ago, status="failed")
    for n in range(2):
        twilio_fake.add_message(to=TO, body=f"new {n}", created=now)
    async with open_twilio_client(twilio_settings(twilio_fake), lookup_page_size=2) as client:
        found = await client.find_messages(to=TO, created_after=now - timedelta(minutes=5))
    assert sorted(m.body for m in found) == ["new 0", "new 1"]
    assert len(_pages_read(twilio_fake)) == 3  # neither date alone ends the lookup


async def test_find_messages_at_its_page_cap_leaves_the_outcome_unknown(twilio_fake):
    since = datetime.now(UTC) - timedelta(minutes=1)
    for n in range(15):
        twilio_fake.add_message(to=TO, body=f"text {n}", created=datetime.now(UTC))
    settings = twilio_settings(twilio_fake)
    async with open_twilio_client(settings, lookup_page_size=5, lookup_max_pages=3) as client:
        assert len(await client.find_messages(to=TO, created_after=since)) == 15
        assert len(_pages_read(twilio_fake)) == 3  # three pages held the whole window
        twilio_fake.add_message(to=TO, body="one more", created=datetime.now(UTC))
        twilio_fake.requests.clear()
        with pytest.raises(SmsOutcomeUnknownError):
            await client.find_messages(to=TO, created_after=since)
    assert len(_pages_read(twilio_fake)) == 3  # stopped at the cap, the window not covered


async def test_find_messages_retries_a_failed_page(twilio_fake):
    since = datetime.now(UTC) - timedelta(minutes=1)
    for n in range(6):
        twilio_fake.add_message(to=TO, body=f"text {n}", created=datetime.now(UTC))
    twilio_fake.faults += [Fault(method="GET"), Fault(status=503, method="GET")]
    settings = twilio_settings(twilio_fake, twilio_max_retry_wait_seconds=0.2)
    async with open_twilio_client(settings, lookup_page_size=3) as client:
        found = await client.find_messages(to=TO, created_after=since)
    assert len(found) == 6
    pages = _pages_read(twilio_fake)
    assert len(pages) == 3
    assert pages[1] == pages[2]  # the second page, asked again after the 503


async def test_a_lookup_is_bounded_as_a_whole(twilio_fake):
    since = datetime.now(UTC) - timedelta(minutes=1)
    for n in range(10):
        twilio_fake.add_message(to=TO, body=f"text {n}", created=datetime.now(UTC))
    # Each page answers within the timeout; the whole lookup may not take longer than one.
    # (0.4 s of slack for the first page: a loaded CI machine once took over 0.1 s more.)
    twilio_fake.faults.append(Fault(delay=0.6, method="GET", count=10))
    settings = twilio_settings(twilio_fake, twilio_timeout_seconds=1.0, twilio_max_retries=0)
    started = time.monotonic()
    async with open_twilio_client(settings, lookup_page_size=2) as client:
        with pytest.raises(SmsProviderUnavailableError):
            await client.find_messages(to=TO, created_after=since)
    assert time.monotonic() - started < 2.0
    assert len(_pages_read(twilio_fake)) == 2  # cut off during the second page


async def test_console_sender_logs_and_returns_a_twilio_shaped_id(caplog):
    sender = ConsoleSmsSender()
    with caplog.at_level(logging.INFO, logger="app.twilio"):
        sent = await sender.send(to=TO, body="Hello there", status_callback=None)
    assert SID.match(sent.sid)
    assert sent.status == "sent"
    [record] = [r for r in caplog.records if r.name == "app.twilio"]
    assert (record.sid, record.body_chars) == (sent.sid, len("Hello there"))
    assert not hasattr(record, "to")
    assert not hasattr(record, "body")
    assert await sender.find_messages(to=TO, created_after=datetime.now(UTC)) == []


def test_signature_covers_the_url_and_every_parameter(twilio_fake):
    url = "https://api.example.com/api/v1/webhooks/twilio/status?message_id=3"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    good = twilio_fake.sign(url, params)
    token = twilio_fake.auth_token
    multi = {name: [value] for name, value in params.items()}
    assert is_valid_signature(auth_token=token, url=url, params=multi, signature=good)
    assert not is_valid_signature(auth_token=token, url=url + "4", params=multi, signature=good)
    extra = {**multi, "Extra": ["1"]}
    assert not is_valid_signature(auth_token=token, url=url, params=extra, signature=good)
    assert not is_valid_signature(auth_token=token, url=url, params=multi, signature=None)
    assert not is_valid_signature(auth_token=None, url=url, params=multi, signature=good)
    wrong = twilio_fake.sign(url, params, wrong=True)
    assert not is_valid_signature(auth_token=token, url=url, params=multi, signature=wrong)


@pytest.mark.parametrize(
    ("body", "opt_out_type", "expected"),
    [
        ("STOP", None, "STOP"),
        (" stop ", None, "STOP"),
        ("Unsubscribe", None, "STOP"),
        ("optout", None, "STOP"),
        ("REVOKE", None, "STOP"),
        ("Stop please", None, None),
        ("OPT OUT", None, None),
        ("start", None, "START"),
        ("Yes", None, "START"),
        ("UNSTOP", None, "START"),
        ("arret", "STOP", "STOP"),
        ("hello", None, None),
    ],
)
def test_opt_keyword(body, opt_out_type, expected):
    assert opt_keyword(body, opt_out_type) == expected
