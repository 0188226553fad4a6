"""A stand-in for Twilio's Messages API, run on 127.0.0.1 by the tests and the benchmark.

It does what providers.md section 4 lists: Basic auth, form-only creates with Twilio's
validation errors and magic test numbers, an opt-out set fed by inbound STOP/START (21610),
Twilio-shaped bodies, GET one / list messages (paged as Twilio pages: newest first,
`PageSize`, `Page`/`PageToken`, `next_page_uri`); signed status callbacks to the exact
StatusCallback URL (optionally duplicated, reordered, delayed or wrongly signed); signed
inbound texts; faults per request (status, Retry-After, delay, accept-then-fail); a request
log and a reset. Tests drive it through the `FakeTwilio` object, other processes through
the `/_fake/...` routes.

Run alone: `python -m tests.fakes.twilio_fake --port 8765 --account-sid AC... --auth-token t`.
"""

import argparse
import asyncio
import base64
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tests.fakes.serving import serve_in_thread

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
MAGIC_FROM = {
    "+15005550001": (21212, "The 'From' number is not a valid phone number."),
    "+15005550007": (21606, "The 'From' phone number is not a valid, SMS-capable number."),
    "+15005550008": (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages.",
    ),
}
OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN = {"START", "YES", "UNSTOP"}
MAX_PAGE_SIZE = 1000  # Twilio's PageSize: 1 to 1000, default 50


@dataclass
class Fault:
    """Answer the next `count` requests of `method` with `status` (after `delay` seconds).

    `accept=True` stores the message first, so the text "went out" although the answer is an
    error or late: the case a client must not turn into a second text. A fault with no
    status, delay or accept lets `count` requests through untouched, to place the next one.
    """

    status: int | None = None
    code: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    accept: bool = False
    count: int = 1
    method: str = "POST"


@dataclass
class CallbackPlan:
    """Status callbacks sent after each create that names a StatusCallback."""

    outcome: str | None = None  # "delivered" | "undelivered" | "failed" | None (no callbacks)
    duplicate: bool = False
    reorder: bool = False
    delay: float = 0.0
    wrong_token: bool = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class FakeTwilio:
    """The fake's state; `app` serves it. Safe to read from the test's thread."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    callbacks: CallbackPlan = field(default_factory=CallbackPlan)
    callback_log: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    base_url: str = ""

    def reset(self) -> None:
        self.messages.clear()
        self.opted_out.clear()
        self.requests.clear()
        self.faults.clear()
        self.callback_log.clear()
        self.callbacks = CallbackPlan()

    def creates(self) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.method == "POST"]

    def sign(self, url: str, params: dict[str, str], *, wrong: bool = False) -> str:
        token = "wrong-token" if wrong else self.auth_token
        return str(RequestValidator(token).compute_signature(url, params))

    async def post_signed(
        self, url: str, params: dict[str, str], *, wrong_token: bool = False
    ) -> httpx.Response:
        headers = {"X-Twilio-Signature": self.sign(url, params, wrong=wrong_token)}
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(url, data=params, headers=headers)
        self.callback_log.append((url, params, response.status_code))
        return response

    def inbound_params(
        self, *, from_: str, to: str, body: str, messaging_service_sid: str | None = None
    ) -> dict[str, str]:
        """The full form Twilio posts for an incoming text; also feeds the opt-out set."""
        sid = f"SM{uuid.uuid4().hex}"
        word = body.strip().upper()
        if word in OPT_OUT:
            self.opted_out.add(from_)
        elif word in OPT_IN:
            self.opted_out.discard(from_)
        params = {
            "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0",
            "ToCity": "SAN FRANCISCO", "FromZip": "94105", "SmsSid": sid, "FromState": "CA",
            "SmsStatus": "received", "FromCity": "SAN FRANCISCO", "Body": body,
            "FromCountry": "US", "To": to, "ToZip": "94105", "NumSegments": "1",
            "MessageSid": sid, "AccountSid": self.account_sid, "From": from_,
            "ApiVersion": "2010-04-01",
        }  # fmt: skip
        if messaging_service_sid:
            params["MessagingServiceSid"] = messaging_service_sid
            if word in OPT_OUT | OPT_IN:
                params["OptOutType"] = "STOP" if word in OPT_OUT else "START"
        return params

    def add_message(
        self,
        *,
        to: str,
        body: str,
        created: datetime,
        sent: datetime | None = None,
        status: str = "delivered",
    ) -> dict[str, Any]:
        """Store a message as if it had gone out at `created` (and left Twilio at `sent`)."""
        message = self._message({"To": to, "Body": body, "From": "+15005550006"}, created)
        message["date_sent"] = format_datetime(sent, usegmt=False) if sent else None
        message["status"] = status
        self.messages[message["sid"]] = message
        return message

    # --- the HTTP app ------------------------------------------------------------------

    def app(self) -> Starlette:
        base = "/2010-04-01/Accounts/{account}"
        return Starlette(
            routes=[
                Route(base + "/Messages.json", self._create, methods=["POST"]),
                Route(base + "/Messages.json", self._list, methods=["GET"]),
                Route(base + "/Messages/{sid}.json", self._fetch, methods=["GET"]),
                Route("/_fake/reset", self._reset_route, methods=["POST"]),
                Route("/_fake/state", self._state_route, methods=["GET"]),
                Route("/_fake/faults", self._faults_route, methods=["POST"]),
            ]
        )

    async def _create(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self._record(request, form)
        if (denied := self._check_auth(request)) is not None:
            return denied
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _error(415, 415, "Unsupported media type: send a form.")
        fault = self._take_fault("POST")
        accepted = self._store(form) if fault is not None and fault.accept else None
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return _error(fault.status, fault.code, "Injected fault.", fault.retry_after)
            if accepted is not None:
                return JSONResponse(accepted, 201)
        if (invalid := self._validate(form)) is not None:
            return invalid
        return JSONResponse(self._store(form), status_code=201)

    def _validate(self, form: dict[str, str]) -> Response | None:
        to, sender, body = form.get("To"), form.get("From"), form.get("Body")
        checks = [
            (not to, 21604, "A 'To' phone number is required."),
            (not sender and not form.get("MessagingServiceSid"), 21603, "A 'From' is required."),
            (not body, 21602, "Message body is required."),
            (len(body or "") > 1600, 21617, "The concatenated message body exceeds 1600."),
            (bool(to) and not E164.match(to or ""), 21211, "The 'To' number is not valid."),
        ]
        for failed, code, message in checks:
            if failed:
                return _error(400, code, message)
        if to in MAGIC_TO:
            return _error(400, *MAGIC_TO[to])
        if sender in MAGIC_FROM:
            return _error(400, *MAGIC_FROM[sender])
        if to in self.opted_out:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    def _store(self, form: dict[str, str]) -> dict[str, Any]:
        message = self._message(form, datetime.now(UTC))
        self.messages[message["sid"]] = message
        callback_url = form.get("StatusCallback")
        if callback_url and self.callbacks.outcome:
            asyncio.get_running_loop().create_task(self._send_callbacks(callback_url, message))
        return message

    def _message(self, form: dict[str, str], created: datetime) -> dict[str, Any]:
        """A Twilio-shaped message created at `created`, not yet sent (`date_sent` null)."""
        sid = f"SM{uuid.uuid4().hex}"
        now = format_datetime(created, usegmt=False)
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01",
            "body": form.get("Body", ""), "date_created": now, "date_sent": None,
            "date_updated": now, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "num_media": "0",
            "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "subresource_uris": {"media": f"/Messages/{sid}/Media.json"},
            "to": form.get("To"),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }  # fmt: skip

    async def _send_callbacks(self, url: str, message: dict[str, Any]) -> None:
        plan = self.callbacks
        await asyncio.sleep(plan.delay)
        statuses = ["sent", plan.outcome or "delivered"]
        if plan.reorder:
            statuses.reverse()
        for status in statuses:
            params = {
                "AccountSid": self.account_sid, "From": str(message["from"] or ""),
                "To": str(message["to"]), "MessageSid": message["sid"],
                "SmsSid": message["sid"], "MessageStatus": status, "SmsStatus": status,
                "ApiVersion": "2010-04-01",
            }  # fmt: skip
            if status in {"undelivered", "failed"}:
                params["ErrorCode"] = "30003"
            if status in {"delivered", "undelivered"}:
                params["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
            message["status"] = status
            for _ in range(2 if plan.duplicate else 1):
                await self.post_signed(url, params, wrong_token=plan.wrong_token)

    async def _list(self, request: Request) -> Response:
        self._record(request, dict(request.query_params))
        if (denied := self._check_auth(request)) is not None:
            return denied
        fault = self._take_fault("GET")
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return _error(fault.status, fault.code, "Injected fault.", fault.retry_after)
        return self._page(request)

    def _page(self, request: Request) -> Response:
        """One page of the messages (to `To`, if given), newest first, as Twilio pages them.

        Newest first by `date_created`, later-stored first within a second (Twilio's docs say
        it sorts by DateSent; the client's stop rule holds for either). `next_page_uri`
        carries `PageToken=PA<sid of this page's last message>`: the next page starts after
        that message, so texts created meanwhile shift nothing. `Page` is for the client only.
        """
        query = request.query_params
        to = query.get("To")
        try:
            size = int(query.get("PageSize", "50"))
            page = int(query.get("Page", "0"))
        except ValueError:
            return _error(400, None, "PageSize and Page must be integers.")
        if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
            return _error(400, None, f"PageSize must be 1 to {MAX_PAGE_SIZE}, Page >= 0.")
        found = _newest_first(m for m in list(self.messages.values()) if to in (None, m["to"]))
        start = 0
        if token := query.get("PageToken"):
            sids = [m["sid"] for m in found]
            if not token.startswith("PA") or token[2:] not in sids:
                return _error(400, None, "Invalid PageToken.")
            start = sids.index(token[2:]) + 1
        items = found[start : start + size]
        uri = request.url.path
        base = {"To": to} if to else {}
        next_uri = None
        if start + size < len(found):
            after = {"PageSize": size, "Page": page + 1, "PageToken": "PA" + items[-1]["sid"]}
            next_uri = f"{uri}?{urlencode({**base, **after})}"
        return JSONResponse(
            {
                "messages": items,
                "page": page,
                "page_size": size,
                "start": start,
                "end": start + max(len(items) - 1, 0),
                "uri": f"{uri}?{urlencode({**base, 'PageSize': size, 'Page': page})}",
                "first_page_uri": f"{uri}?{urlencode({**base, 'PageSize': size, 'Page': 0})}",
                "next_page_uri": next_uri,
                "previous_page_uri": None,
            }
        )

    async def _fetch(self, request: Request) -> Response:
        self._record(request, {})
        if (denied := self._check_auth(request)) is not None:
            return denied
        message = self.messages.get(request.path_params["sid"])
        if message is None:
            return _error(404, 20404, "The requested resource was not found")
        return JSONResponse(message)

    def _check_auth(self, request: Request) -> Response | None:
        pair = f"{self.account_sid}:{self.auth_token}".encode()
        expected = "Basic " + base64.b64encode(pair).decode()
        if (
            request.headers.get("authorization") != expected
            or request.path_params.get("account") != self.account_sid
        ):
            return _error(401, 20003, "Authenticate")
        return None

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.count > 0:
                fault.count -= 1
                return fault
        return None

    def _record(self, request: Request, form: dict[str, str]) -> None:
        self.requests.append(
            RecordedRequest(
                request.method, request.url.path, form, dict(request.headers), time.monotonic()
            )
        )

    async def _reset_route(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})

    async def _state_route(self, request: Request) -> Response:
        return JSONResponse(
            {
                "messages": len(self.messages),
                "creates": len(self.creates()),
                "distinct_bodies": len({r.form.get("Body") for r in self.creates()}),
                "requests": len(self.requests),
            }
        )

    async def _faults_route(self, request: Request) -> Response:
        self.faults.extend(Fault(**item) for item in await request.json())
        return JSONResponse({"ok": True})


def _error(status: int, code: int | None, message: str, retry_after: str | None = None) -> Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"Retry-After": retry_after} if retry_after else None
    return JSONResponse(body, status_code=status, headers=headers)


def _newest_first(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sort by `date_created`, newest first; the later-stored first within one second."""
    later_stored_first = list(messages)[::-1]
    return sorted(
        later_stored_first, key=lambda m: parsedate_to_datetime(m["date_created"]), reverse=True
    )


@contextmanager
def running_fake(fake: FakeTwilio | None = None) -> Iterator[FakeTwilio]:
    """Serve a fake on a free port of 127.0.0.1 in a thread; `fake.base_url` is its URL."""
    fake = fake or FakeTwilio()
    with serve_in_thread(fake.app(), "Twilio") as base_url:
        fake.base_url = base_url
        yield fake


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Twilio stand-in.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account-sid", default=ACCOUNT_SID)
    parser.add_argument("--auth-token", default=AUTH_TOKEN)
    args = parser.parse_args()
    fake = FakeTwilio(account_sid=args.account_sid, auth_token=args.auth_token)
    uvicorn.run(fake.app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
