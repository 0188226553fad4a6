"""A stand-in for Stripe Checkout, run on 127.0.0.1 by the tests.

It does what providers.md section 4 (items 4-7) lists: `POST /v1/checkout/sessions` with
Stripe's bracket form encoding, Bearer or Basic secret-key auth, Stripe-like validation
errors, and an idempotency layer (replay with `Idempotent-Replayed: true`, 400
`idempotency_error` for the same key with other parameters, 409 while the first request
with a key is in flight); `GET .../sessions/{id}` and `POST .../sessions/{id}/expire`.
Driver methods build the events a payment outcome causes (`checkout.session.completed`,
`...async_payment_failed`, `...expired`), signed `t=...,v1=...` with the webhook secret,
with knobs for a stale timestamp, a bad signature and resending an event id. Faults per
request: status (with or without `Stripe-Should-Retry`), delay, a dropped connection, or
"accept then fail" (the session is made but the answer is an error). Every request is
logged (headers included). Tests use the `FakeStripe` object; other processes the
`/_fake/...` routes.
"""

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.serving import serve_in_thread

SECRET_KEY = "sk_test_fake_0123456789abcdef"
WEBHOOK_SECRET = "whsec_test_fake_0123456789abcdef"
API_VERSION = "2026-10-28.endive"
CURRENCIES = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50}
SESSIONS_PATH = "/v1/checkout/sessions"
_IN_FLIGHT = "in-flight"
_BRACKETS = re.compile(r"\[([^\]]*)\]")

OUTCOMES: dict[str, tuple[str, str, str]] = {  # outcome: (event type, status, payment_status)
    "paid": ("checkout.session.completed", "complete", "paid"),
    "completed_unpaid": ("checkout.session.completed", "complete", "unpaid"),
    "async_succeeded": ("checkout.session.async_payment_succeeded", "complete", "paid"),
    "async_failed": ("checkout.session.async_payment_failed", "complete", "unpaid"),
    "expired": ("checkout.session.expired", "expired", "unpaid"),
}


@dataclass
class Fault:
    """Answer the next `count` requests under `prefix` with a fault.

    `status`: answer this status (after `delay` s); `should_retry` adds Stripe-Should-Retry.
    `accept=True` creates the session first (the answer is lost, not the work). `drop=True`
    cuts the connection instead of answering. A bare `delay` answers normally but late.
    """

    status: int | None = None
    should_retry: bool | None = None
    delay: float = 0.0
    accept: bool = False
    drop: bool = False
    count: int = 1
    prefix: str = SESSIONS_PATH


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]


@dataclass
class SignedEvent:
    """An event as it would be posted: the raw body and its Stripe-Signature header."""

    id: str
    payload: str
    signature: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Stripe-Signature": self.signature, "Content-Type": "application/json"}


@dataclass
class FakeStripe:
    """The fake's state; `app` serves it. Safe to read from the test's thread."""

    secret_key: str = SECRET_KEY
    webhook_secret: str = WEBHOOK_SECRET
    webhook_url: str | None = None
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], Any] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    base_url: str = ""
    generation: int = 0  # bumped by reset: work still in flight from before is dropped

    def reset(self) -> None:
        self.generation += 1
        for store in (self.sessions, self.idempotency, self.events):
            store.clear()
        self.requests.clear()
        self.faults.clear()

    def creates(self) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.method == "POST" and r.path == SESSIONS_PATH]

    # --- driver: the events Stripe would send ---------------------------------------------

    def event(
        self, session_id: str, outcome: str, *, age: int = 0, bad_signature: bool = False
    ) -> SignedEvent:
        """Move a session to `outcome` (a key of OUTCOMES); return its signed event.

        `age` seconds back-dates the signature's timestamp (stale after 300 s).
        """
        event_type, status, payment_status = OUTCOMES[outcome]
        session = self.sessions[session_id]
        session.update(status=status, payment_status=payment_status)
        event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": dict(session)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        self.events[event["id"]] = event
        return self.sign(event, age=age, bad_signature=bad_signature)

    def resend(self, event_id: str, *, age: int = 0) -> SignedEvent:
        """The same event again (same id and body), signed anew as Stripe's retries are."""
        return self.sign(self.events[event_id], age=age)

    def sign(
        self, event: dict[str, Any], *, age: int = 0, bad_signature: bool = False
    ) -> SignedEvent:
        payload = json.dumps(event)
        return SignedEvent(event["id"], payload, self.sign_raw(payload, age, bad_signature))

    def sign_raw(self, payload: str, age: int = 0, bad_signature: bool = False) -> str:
        """The Stripe-Signature header for any raw body."""
        timestamp = int(time.time()) - age
        secret = "whsec_wrong" if bad_signature else self.webhook_secret
        digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
        return f"t={timestamp},v1={digest.hexdigest()}"

    async def deliver(self, signed: SignedEvent, url: str | None = None) -> httpx.Response:
        """POST a signed event to `url` (default: the configured `webhook_url`)."""
        target = url or self.webhook_url
        assert target, "no webhook URL configured"
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(target, content=signed.payload, headers=signed.headers)

    # --- the HTTP app ---------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(SESSIONS_PATH, self._create, methods=["POST"]),
                Route(SESSIONS_PATH + "/{id}", self._retrieve, methods=["GET"]),
                Route(SESSIONS_PATH + "/{id}/expire", self._expire, methods=["POST"]),
                Route("/_fake/reset", self._reset_route, methods=["POST"]),
                Route("/_fake/state", self._state_route, methods=["GET"]),
                Route("/_fake/faults", self._faults_route, methods=["POST"]),
                Route("/_fake/sessions/{id}/{outcome}", self._drive_route, methods=["POST"]),
            ]
        )

    async def _create(self, request: Request) -> Response:
        params = parse_form(list((await request.form(max_fields=5000)).multi_items()))
        generation = self.generation
        self._record(request, params)
        fault = self._take_fault(request.url.path)
        if fault and not fault.accept and (fault.status or fault.drop):
            await asyncio.sleep(fault.delay)
            return _dropped() if fault.drop else _fault_response(fault)
        if (denied := self._check_auth(request)) is not None:
            return denied
        key = request.headers.get("idempotency-key")
        fingerprint = json.dumps(params, sort_keys=True)
        if key:
            stored = self.idempotency.get((self.secret_key, key))
            if stored == _IN_FLIGHT:
                return _error(409, "idempotency_error", "idempotency_key_in_use", None)
            if stored is not None:
                if stored[0] != fingerprint:
                    return _error(400, "idempotency_error", None, None)
                return JSONResponse(
                    stored[2], status_code=stored[1], headers={"Idempotent-Replayed": "true"}
                )
            self.idempotency[(self.secret_key, key)] = _IN_FLIGHT
        try:
            if fault:  # the work happens late; the key stays in flight meanwhile
                await asyncio.sleep(fault.delay)
                if generation != self.generation:
                    return _error(500, "api_error", None, "The fake was reset.")
            invalid = self._validate(params)
            body, status = invalid if invalid else (self._new_session(params), 200)
        finally:
            if key and self.idempotency.get((self.secret_key, key)) == _IN_FLIGHT:
                del self.idempotency[(self.secret_key, key)]
        if key and status == 200:  # Stripe does not save requests that failed validation
            self.idempotency[(self.secret_key, key)] = (fingerprint, status, body)
        if fault and fault.accept:
            return _dropped() if fault.drop else _fault_response(fault)
        return JSONResponse(body, status_code=status, headers=_request_id())

    def _validate(self, params: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
        if params.get("mode") != "payment":
            return _error_body("parameter_invalid_string", "mode")
        if not params.get("success_url"):
            return _error_body("parameter_missing", "success_url")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            return _error_body("parameter_missing", "line_items")
        for index, item in enumerate(items):
            where = f"line_items[{index}]"
            price = item.get("price_data") or {}
            currency = str(price.get("currency", ""))
            if currency not in CURRENCIES:
                return _error_body("parameter_invalid_string", f"{where}[price_data][currency]")
            amount = str(price.get("unit_amount", ""))
            if not amount.isdigit():
                return _error_body("parameter_invalid_integer", f"{where}[price_data][unit_amount]")
            if int(amount) < CURRENCIES[currency]:
                return _error_body("amount_too_small", f"{where}[price_data][unit_amount]")
            if not (price.get("product_data") or {}).get("name"):
                return _error_body("parameter_missing", f"{where}[price_data][product_data][name]")
            if not str(item.get("quantity", "")).isdigit():
                return _error_body("parameter_invalid_integer", f"{where}[quantity]")
        return None

    def _new_session(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = f"cs_test_{secrets.token_hex(24)}"
        total = sum(
            int(item["price_data"]["unit_amount"]) * int(item["quantity"])
            for item in params["line_items"]
        )
        now = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": params["line_items"][0]["price_data"]["currency"],
            "expires_at": now + 24 * 3600,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "url": f"{self.base_url}/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return dict(session)

    async def _retrieve(self, request: Request) -> Response:
        self._record(request, {})
        if (denied := self._check_auth(request)) is not None:
            return denied
        session = self.sessions.get(request.path_params["id"])
        if session is None:
            return JSONResponse(*_error_body("resource_missing", "id", 404))
        return JSONResponse(session, headers=_request_id())

    async def _expire(self, request: Request) -> Response:
        self._record(request, {})
        if (denied := self._check_auth(request)) is not None:
            return denied
        session = self.sessions.get(request.path_params["id"])
        if session is None:
            return JSONResponse(*_error_body("resource_missing", "id", 404))
        if session["status"] != "open":
            return JSONResponse(*_error_body("checkout_session_not_open", None))
        session["status"] = "expired"
        return JSONResponse(session, headers=_request_id())

    def _check_auth(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        basic = base64.b64encode(f"{self.secret_key}:".encode()).decode()
        if header not in {f"Bearer {self.secret_key}", f"Basic {basic}"}:
            return _error(401, "invalid_request_error", None, "Invalid API Key provided.")
        return None

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if path.startswith(fault.prefix) and fault.count > 0:
                fault.count -= 1
                return fault
        return None

    def _record(self, request: Request, params: dict[str, Any]) -> None:
        self.requests.append(
            RecordedRequest(request.method, request.url.path, params, dict(request.headers))
        )

    async def _reset_route(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})

    async def _state_route(self, request: Request) -> Response:
        return JSONResponse(
            {
                "sessions": len(self.sessions),
                "creates": len(self.creates()),
                "requests": [
                    [r.method, r.path, r.headers.get("idempotency-key")] for r in self.requests
                ],
            }
        )

    async def _faults_route(self, request: Request) -> Response:
        self.faults.extend(Fault(**item) for item in await request.json())
        return JSONResponse({"ok": True})

    async def _drive_route(self, request: Request) -> Response:
        knobs = await request.json() if await request.body() else {}
        signed = self.event(
            request.path_params["id"],
            request.path_params["outcome"],
            age=int(knobs.get("age", 0)),
            bad_signature=bool(knobs.get("bad_signature", False)),
        )
        delivered = await self.deliver(signed) if self.webhook_url else None
        return JSONResponse(
            {"event_id": signed.id, "status": delivered.status_code if delivered else None}
        )


def parse_form(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Read Stripe's bracket encoding: `a[b][0][c]=v` -> `{"a": {"b": [{"c": "v"}]}}`."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        head = name.split("[", 1)[0]
        keys = [head, *_BRACKETS.findall(name[len(head) :])]
        node: Any = root
        for key, next_key in itertools.pairwise(keys):
            node = _child(node, key, [] if next_key.isdigit() or next_key == "" else {})
        _set(node, keys[-1], str(value))
    return root


def _child(node: Any, key: str, empty: Any) -> Any:
    if isinstance(node, list):
        index = int(key) if key else len(node)
        while len(node) <= index:
            node.append(type(empty)())
        return node[index]
    return node.setdefault(key, empty)


def _set(node: Any, key: str, value: str) -> None:
    if isinstance(node, list):
        index = int(key) if key else len(node)
        while len(node) <= index:
            node.append(None)
        node[index] = value
    else:
        node[key] = value


def _request_id() -> dict[str, str]:
    return {"Request-Id": f"req_{secrets.token_hex(7)}"}


def _error_body(code: str, param: str | None, status: int = 400) -> tuple[dict[str, Any], int]:
    message = f"Invalid request ({code})" + (f": {param}" if param else "")
    error = {"type": "invalid_request_error", "code": code, "param": param, "message": message}
    return {"error": error}, status


def _error(status: int, error_type: str, code: str | None, message: str | None) -> Response:
    body = {"error": {"type": error_type, "code": code, "message": message or error_type}}
    return JSONResponse(body, status_code=status, headers=_request_id())


def _fault_response(fault: Fault) -> Response:
    headers = _request_id()
    if fault.should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
    error_type = "invalid_request_error" if fault.status == 429 else "api_error"
    body = {"error": {"type": error_type, "message": "Injected fault."}}
    return JSONResponse(body, status_code=fault.status or 500, headers=headers)


def _dropped() -> Response:
    """Promise a body and send none: the client sees the connection cut mid-response."""
    return Response(b"", headers={"content-length": "1000"})


@contextmanager
def running_fake(fake: FakeStripe | None = None) -> Iterator[FakeStripe]:
    """Serve a fake on a free port of 127.0.0.1 in a thread; `fake.base_url` is its URL."""
    fake = fake or FakeStripe()
    with serve_in_thread(fake.app(), "Stripe") as base_url:
        fake.base_url = base_url
        yield fake
