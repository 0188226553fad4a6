"""A stand-in for a FHIR R4 server with SMART Backend Services, run on 127.0.0.1 by the tests.

Token endpoint (`POST /auth/token`, announced at `/fhir/.well-known/smart-configuration`):
the client-credentials grant with a JWT client assertion, verified against the registered
public keys (by `kid`): signature, `iss` = `sub` = the client id, `aud` = the token URL, `exp`
present, not past and at most 5 minutes ahead, a `jti` never seen before, known scopes.
Refusals are RFC 6749 errors (`invalid_client`, ...). Tokens expire after `token_lifetime`.

FHIR (`/fhir/Patient`): create (with `If-None-Exist`, `Prefer`), read (404 unknown, 410
deleted), update (`If-Match`, 412 on a stale version), search by identifier or name with
`_count` paging through HAPI-style `next` links (`/fhir?_getpages=...`), ETags and
`meta.versionId`/`lastUpdated`, `OperationOutcome` errors; every request needs a valid token.

Faults per request (`Fault`): a status with `Retry-After`, an HTML body, a delay, a dropped
connection, "accept then fail" (the work is done, the answer is lost), and `stale` (another
writer changes the patient just before an update). Drivers: `add_patient`, `touch` (a change
behind the client's back: its ETag goes stale), `delete`, `revoke_tokens`. A request log and
a reset, like the Twilio and Stripe stand-ins.
"""

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.serving import serve_in_thread
from tests.fakes.smart_fake import (
    ClientKey,
    Refusal,
    new_key,
    smart_configuration,
    verify_token_request,
)

CLIENT_ID = "lead-tracker-test-client"
STATIC_TOKEN = "static-fhir-token-0123456789abcdef"
FHIR_JSON = "application/fhir+json"


@dataclass
class Fault:
    """Answer the next `count` requests of `method` (any if None) under `prefix` with a fault.

    `status` answers that status after `delay` s (an OperationOutcome with `text`, or HTML
    with `html=True`); `drop` cuts the connection. `accept=True` does the work first, then
    answers the fault late (a bare `delay` with `accept` answers normally, late). `stale=True`
    lets another writer change the patient just before an update is checked.
    """

    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    drop: bool = False
    accept: bool = False
    stale: bool = False
    html: bool = False
    text: str = "Injected fault."
    count: int = 1
    method: str | None = None
    prefix: str = "/fhir/Patient"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeFhir:
    """The fake's state; `app` serves it. Safe to read from the test's thread."""

    keys: dict[str, ClientKey] = field(default_factory=dict)
    client_id: str = CLIENT_ID
    static_token: str = STATIC_TOKEN
    base_url: str = ""
    # knobs, back to these defaults on reset
    token_lifetime: int = 300
    token_delay: float = 0.0
    next_link_base: str | None = None  # e.g. another origin, to test that it is refused
    ignore_prefer: bool = False  # answer writes with an empty body and a Location
    # state
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    tokens: dict[str, float] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)
    refused_tokens: list[str] = field(default_factory=list)  # a 401 was answered
    seen_jti: set[str] = field(default_factory=set)
    assertions: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    pages: dict[str, list[str]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/auth/token"

    def reset(self) -> None:
        self.token_lifetime, self.token_delay = 300, 0.0
        self.next_link_base, self.ignore_prefer = None, False
        for store in (self.patients, self.tokens, self.pages):
            store.clear()
        for items in (self.deleted, self.seen_jti):
            items.clear()
        for log in (self.issued, self.refused_tokens, self.assertions, self.requests, self.faults):
            log.clear()

    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.path == "/auth/token"]

    def fhir_requests(self, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in list(self.requests)
            if r.path.startswith("/fhir") and ".well-known" not in r.path
            if method is None or r.method == method
        ]

    # --- drivers ------------------------------------------------------------------------

    def add_patient(self, resource: dict[str, Any]) -> dict[str, Any]:
        return self._store(secrets.token_hex(6), {"resourceType": "Patient", **resource}, 1)

    def touch(self, patient_id: str) -> None:
        """Another system changes the patient: a new version, so the client's ETag is stale."""
        patient = self.patients[patient_id]
        self._store(patient_id, {**patient, "gender": "unknown"}, _version(patient) + 1)

    def delete(self, patient_id: str) -> None:
        self.patients.pop(patient_id)
        self.deleted.add(patient_id)

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def with_identifier(self, system: str, value: str) -> list[dict[str, Any]]:
        return [p for p in self.patients.values() if _has_identifier(p, system, value)]

    # --- the HTTP app -------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/fhir/.well-known/smart-configuration", self._smart_configuration),
                Route("/auth/token", self._token, methods=["POST"]),
                Route("/fhir/Patient", self._create, methods=["POST"]),
                Route("/fhir/Patient", self._search, methods=["GET"]),
                Route("/fhir", self._page, methods=["GET"]),
                Route("/fhir/Patient/{id}", self._read, methods=["GET"]),
                Route("/fhir/Patient/{id}", self._update, methods=["PUT"]),
                Route("/fhir/Patient/{id}", self._delete, methods=["DELETE"]),
                Route("/_fake/reset", self._reset_route, methods=["POST"]),
                Route("/_fake/faults", self._faults_route, methods=["POST"]),
            ]
        )

    async def _smart_configuration(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse(smart_configuration(self.token_url))

    async def _token(self, request: Request) -> Response:
        record = await self._record(request)
        if (faulted := await self._fault_before(request)) is not None:
            return faulted
        form = dict(parse_qsl(record.body.decode()))
        verified = verify_token_request(
            form, keys=self.keys, client_id=self.client_id, audience=self.token_url
        )
        if isinstance(verified, Refusal):
            return verified.response()
        self.assertions.append(verified)
        if verified[1]["jti"] in self.seen_jti:
            return Refusal("invalid_client", "jti was used before.").response()
        self.seen_jti.add(verified[1]["jti"])
        token = secrets.token_urlsafe(32)
        await asyncio.sleep(self.token_delay)
        self.tokens[token] = time.time() + self.token_lifetime
        self.issued.append(token)
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_lifetime,
                "scope": form.get("scope", ""),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _create(self, request: Request) -> Response:
        record = await self._record(request)
        if (refused := self._check_token(request)) is not None:
            return refused
        if not request.headers.get("content-type", "").startswith(FHIR_JSON):
            return _outcome(415, "not-supported", "Send application/fhir+json.")
        fault = self._take_fault(request)
        if fault and not fault.accept and (fault.status or fault.drop):
            return await _fault_answer(fault)
        patient = _parse(record.body)
        if patient is None:
            return _outcome(400, "structure", "The body is not a Patient resource.")
        if (invalid := _validate(patient)) is not None:
            return invalid
        condition = request.headers.get("if-none-exist")
        found = self._matching(dict(parse_qsl(condition))) if condition else []
        if len(found) > 1:
            return _outcome(412, "duplicate", "If-None-Exist matched several patients.")
        status = 200 if found else 201
        stored = found[0] if found else self._store(secrets.token_hex(6), patient, 1)
        if fault:  # accepted: the patient is stored, the answer is late, lost or an error
            return await _fault_answer(fault) or self._answer_write(request, stored, status)
        return self._answer_write(request, stored, status)

    async def _read(self, request: Request) -> Response:
        await self._record(request)
        if (refused := self._check_token(request)) is not None:
            return refused
        if (faulted := await self._fault_before(request)) is not None:
            return faulted
        patient_id = request.path_params["id"]
        if patient_id in self.deleted:
            return _outcome(410, "deleted", f"Patient/{patient_id} was deleted.")
        patient = self.patients.get(patient_id)
        if patient is None:
            return _outcome(404, "not-found", f"Patient/{patient_id} is not known.")
        return _resource(200, patient)

    async def _update(self, request: Request) -> Response:
        record = await self._record(request)
        if (refused := self._check_token(request)) is not None:
            return refused
        fault = self._take_fault(request)
        if fault and (fault.status or fault.drop) and not fault.accept:
            return await _fault_answer(fault)
        patient_id = request.path_params["id"]
        patient = _parse(record.body)
        if patient is None or patient.get("id") != patient_id:
            return _outcome(400, "invalid", "The body must be this Patient, with its id.")
        current = self.patients.get(patient_id)
        if current is None:
            status = 410 if patient_id in self.deleted else 404
            return _outcome(status, "not-found", f"Patient/{patient_id} is not known.")
        if fault and fault.stale:
            self.touch(patient_id)
            current = self.patients[patient_id]
        wanted = request.headers.get("if-match", "").removeprefix("W/").strip('"')
        if wanted != str(_version(current)):
            return _outcome(412, "conflict", f"Version {_version(current)} is current.")
        stored = self._store(patient_id, patient, _version(current) + 1)
        if fault and fault.accept:
            return await _fault_answer(fault) or self._answer_write(request, stored, 200)
        return self._answer_write(request, stored, 200)

    async def _delete(self, request: Request) -> Response:
        await self._record(request)
        if (refused := self._check_token(request)) is not None:
            return refused
        self.delete(request.path_params["id"])
        return Response(status_code=204)

    async def _search(self, request: Request) -> Response:
        await self._record(request)
        if (refused := self._check_token(request)) is not None:
            return refused
        if (faulted := await self._fault_before(request)) is not None:
            return faulted
        params = dict(request.query_params)
        count = int(params.pop("_count", "20"))
        if set(params) - {"identifier", "name"}:
            return _outcome(400, "not-supported", "Search by identifier or name only.")
        ids = [p["id"] for p in self._matching(params)]
        search_id = secrets.token_hex(8)
        self.pages[search_id] = ids
        return self._bundle(search_id, 0, count)

    async def _page(self, request: Request) -> Response:
        await self._record(request)
        if (refused := self._check_token(request)) is not None:
            return refused
        if (faulted := await self._fault_before(request)) is not None:
            return faulted
        params = request.query_params
        if params.get("_getpages") not in self.pages:
            return _outcome(410, "not-found", "This search has expired.")
        return self._bundle(
            params["_getpages"], int(params["_getpagesoffset"]), int(params["_count"])
        )

    def _bundle(self, search_id: str, offset: int, count: int) -> Response:
        ids = self.pages[search_id]
        page = [self.patients[i] for i in ids[offset : offset + count] if i in self.patients]
        links = [{"relation": "self", "url": f"{self.fhir_base}/Patient"}]
        if offset + count < len(ids):
            base = self.next_link_base or self.fhir_base
            links.append(
                {
                    "relation": "next",
                    "url": f"{base}?_getpages={search_id}&_getpagesoffset={offset + count}"
                    f"&_count={count}&_bundletype=searchset",
                }
            )
        bundle = {
            "resourceType": "Bundle",
            "id": secrets.token_hex(8),
            "type": "searchset",
            "total": len(ids),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{self.fhir_base}/Patient/{p['id']}",
                    "resource": p,
                    "search": {"mode": "match"},
                }
                for p in page
            ],
        }
        return JSONResponse(bundle, media_type=FHIR_JSON)

    # --- helpers ------------------------------------------------------------------------

    def _store(self, patient_id: str, patient: dict[str, Any], version: int) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        stored = {
            **patient,
            "id": patient_id,
            "meta": {"versionId": str(version), "lastUpdated": now},
        }
        self.patients[patient_id] = stored
        return stored

    def _matching(self, params: dict[str, str]) -> list[dict[str, Any]]:
        found = list(self.patients.values())
        if "identifier" in params:
            system, _, value = params["identifier"].partition("|")
            found = [p for p in found if _has_identifier(p, system, value)]
        if "name" in params:
            needle = params["name"].lower()
            found = [p for p in found if needle in json.dumps(p.get("name", [])).lower()]
        return found

    def _answer_write(self, request: Request, stored: dict[str, Any], status: int) -> Response:
        location = f"{self.fhir_base}/Patient/{stored['id']}/_history/{_version(stored)}"
        minimal = self.ignore_prefer or request.headers.get("prefer") == "return=minimal"
        if minimal:
            headers = {"Location": location, "ETag": f'W/"{_version(stored)}"'}
            return Response(status_code=status, headers=headers)
        response = _resource(status, stored)
        response.headers["Location"] = location
        return response

    def _check_token(self, request: Request) -> Response | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token == self.static_token or self.tokens.get(token, 0.0) > time.time():
            return None
        self.refused_tokens.append(token)
        return _outcome(401, "login", "The access token is missing, unknown or expired.")

    def _take_fault(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if (
                fault.count > 0
                and request.url.path.startswith(fault.prefix)
                and fault.method in (None, request.method)
            ):
                fault.count -= 1
                return fault
        return None

    async def _fault_before(self, request: Request) -> Response | None:
        fault = self._take_fault(request)
        if fault is None:
            return None
        return await _fault_answer(fault)  # None: answered normally, but late

    async def _record(self, request: Request) -> RecordedRequest:
        record = RecordedRequest(
            request.method,
            request.url.path,
            request.url.query,
            dict(request.headers),
            await request.body(),
        )
        self.requests.append(record)
        return record

    async def _reset_route(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})

    async def _faults_route(self, request: Request) -> Response:
        self.faults.extend(Fault(**item) for item in await request.json())
        return JSONResponse({"ok": True})


def _version(resource: dict[str, Any]) -> int:
    return int(resource["meta"]["versionId"])


def _has_identifier(patient: dict[str, Any], system: str, value: str) -> bool:
    return any(
        i.get("system") == system and i.get("value") == value for i in patient.get("identifier", [])
    )


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("resourceType") == "Patient" else None


def _validate(patient: dict[str, Any]) -> Response | None:
    """A little profile validation, so refusals carry real OperationOutcome text."""
    birth_date = patient.get("birthDate")
    if birth_date is not None and not _is_date(str(birth_date)):
        return _outcome(
            422,
            "invalid",
            f"Patient.birthDate: '{birth_date}' is not a valid date.",
            "RAW-BODY-ONLY",
        )
    if not patient.get("name"):
        return _outcome(422, "required", "Patient.name: minimum required = 1, but only found 0.")
    return None


def _is_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _resource(status: int, resource: dict[str, Any]) -> Response:
    headers = {"ETag": f'W/"{_version(resource)}"'}
    return JSONResponse(resource, status_code=status, headers=headers, media_type=FHIR_JSON)


def _outcome(status: int, code: str, text: str, marker: str | None = None) -> Response:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": text}
    if marker:  # a field that is not the outcome's text: it must never reach our messages
        issue["expression"] = [marker]
    body = {"resourceType": "OperationOutcome", "issue": [issue]}
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


async def _fault_answer(fault: Fault) -> Response | None:
    """Wait `delay`, then the fault's answer; None when it only delays."""
    await asyncio.sleep(fault.delay)
    if not (fault.status or fault.drop):
        return None
    if fault.drop:
        return Response(b"", headers={"content-length": "1000"})  # promised, never sent
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    if fault.html:
        html = b"<html><body><h1>502 Bad Gateway</h1>RAW-UPSTREAM-PAGE</body></html>"
        return Response(html, status_code=fault.status or 500, headers=headers)
    response = _outcome(fault.status or 500, "transient", fault.text)
    response.headers.update(headers)
    return response


@contextmanager
def running_fake(fake: FakeFhir | None = None) -> Iterator[FakeFhir]:
    """Serve a fake on a free port of 127.0.0.1 in a thread; `fake.base_url` is its URL."""
    fake = fake or FakeFhir()
    with serve_in_thread(fake.app(), "FHIR") as base_url:
        fake.base_url = base_url
        yield fake


def main() -> None:
    """Serve the stand-in on a port, with a fresh client key written where the app reads it.

    Prints the settings that point `make run` at it (SMART Backend Services with that key).
    """
    parser = argparse.ArgumentParser(description="Serve the FHIR R4 + SMART stand-in.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-out", required=True, help="where to write the client's PEM")
    parser.add_argument("--algorithm", choices=["RS384", "ES384"], default="ES384")
    args = parser.parse_args()
    key = new_key("stand-in-key", args.algorithm)
    with open(args.key_out, "w", encoding="utf-8") as pem:
        pem.write(key.private_pem)
    fake = FakeFhir(keys={key.kid: key}, base_url=f"http://127.0.0.1:{args.port}")
    print(f"EHR_PROVIDER=fhir FHIR_BASE_URL={fake.fhir_base} FHIR_CLIENT_ID={fake.client_id}")
    print(f"FHIR_PRIVATE_KEY_PATH={args.key_out} FHIR_KEY_ID={key.kid}")
    print(f"FHIR_SIGNING_ALGORITHM={key.algorithm}", flush=True)
    uvicorn.run(fake.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
