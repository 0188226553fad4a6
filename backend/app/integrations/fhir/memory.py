"""An in-process FHIR server: what EHR_PROVIDER=fake talks to instead of a real EHR.

`InMemoryFhirServer` is an httpx transport, so the real `FhirClient` runs against it
unchanged, with no network and no account. It keeps resources of any type in memory (lost
when the process stops) and does what the app uses, as a FHIR server does: ids, versions
(`meta.versionId`, `ETag: W/"n"`, `meta.lastUpdated`), read, create with `If-None-Exist`
(conditional create), update with `If-Match` (412 on a stale version), search by
`identifier` or `_id` (one page), and `OperationOutcome` errors. It is never used in
production (Settings refuses EHR_PROVIDER=fake there).
"""

import json
import secrets
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx

from backend.app.integrations.fhir.resources import FhirJson

FAKE_BASE_URL = "http://fake-ehr.invalid/fhir"
_PREFIX = "/fhir"
_SEARCH_PARAMS = {"identifier", "_id", "_count"}


class InMemoryFhirServer(httpx.AsyncBaseTransport):
    """A FHIR server in memory, reached through `httpx.AsyncClient(transport=...)`."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, str], FhirJson] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one FHIR interaction (no awaits inside: each runs alone on the loop)."""
        body = await request.aread()
        parts = request.url.path.removeprefix(_PREFIX).strip("/").split("/")
        match request.method, parts:
            case "GET", [resource_type, resource_id] if resource_type:
                return self._read(resource_type, resource_id)
            case "GET", [resource_type] if resource_type:
                return self._search(resource_type, dict(request.url.params))
            case "POST", [resource_type] if resource_type:
                return self._create(resource_type, body, request.headers.get("If-None-Exist"))
            case "PUT", [resource_type, resource_id] if resource_type:
                return self._update(
                    resource_type, resource_id, body, request.headers.get("If-Match")
                )
        return _outcome(404, "not-supported", "The fake EHR does not support this request.")

    def _read(self, resource_type: str, resource_id: str) -> httpx.Response:
        resource = self._store.get((resource_type, resource_id))
        if resource is None:
            return _outcome(404, "not-found", f"{resource_type}/{resource_id} is not known.")
        return _answer(200, resource)

    def _search(self, resource_type: str, params: dict[str, str]) -> httpx.Response:
        unsupported = set(params) - _SEARCH_PARAMS
        if unsupported:
            return _outcome(
                400, "not-supported", "The fake EHR searches by identifier and _id only."
            )
        found = self._matching(resource_type, params)
        bundle: FhirJson = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": [{"relation": "self", "url": f"{FAKE_BASE_URL}/{resource_type}"}],
            "entry": [
                {"fullUrl": f"{FAKE_BASE_URL}/{resource_type}/{r['id']}", "resource": r}
                for r in found
            ],
        }
        return _answer(200, bundle)

    def _create(self, resource_type: str, body: bytes, if_none_exist: str | None) -> httpx.Response:
        resource = _parse(body, resource_type)
        if resource is None:
            return _outcome(400, "invalid", f"The body is not a {resource_type} resource.")
        if if_none_exist:
            condition = dict(parse_qsl(if_none_exist))
            if set(condition) - _SEARCH_PARAMS:
                return _outcome(400, "not-supported", "If-None-Exist: identifier or _id only.")
            found = self._matching(resource_type, condition)
            if len(found) > 1:
                return _outcome(412, "duplicate", "If-None-Exist matched several resources.")
            if found:
                return _answer(200, found[0])
        resource_id = secrets.token_hex(8)
        return _answer(201, self._save(resource_type, resource_id, resource, version=1))

    def _update(
        self, resource_type: str, resource_id: str, body: bytes, if_match: str | None
    ) -> httpx.Response:
        resource = _parse(body, resource_type)
        if resource is None or resource.get("id") != resource_id:
            return _outcome(400, "invalid", f"The body is not {resource_type}/{resource_id}.")
        current = self._store.get((resource_type, resource_id))
        if current is None:
            return _outcome(404, "not-found", f"{resource_type}/{resource_id} is not known.")
        version = _version(current)
        if if_match is not None and if_match.removeprefix("W/").strip('"') != str(version):
            return _outcome(412, "conflict", f"Version {version} is current, not {if_match}.")
        return _answer(200, self._save(resource_type, resource_id, resource, version=version + 1))

    def _save(
        self, resource_type: str, resource_id: str, resource: FhirJson, *, version: int
    ) -> FhirJson:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        saved: FhirJson = {
            **resource,
            "id": resource_id,
            "meta": {"versionId": str(version), "lastUpdated": now},
        }
        self._store[(resource_type, resource_id)] = saved
        return saved

    def _matching(self, resource_type: str, params: dict[str, str]) -> list[FhirJson]:
        found = [r for (kind, _), r in self._store.items() if kind == resource_type]
        if "_id" in params:
            found = [r for r in found if r.get("id") == params["_id"]]
        if "identifier" in params:
            system, value = _split_token(params["identifier"])
            found = [r for r in found if _has_identifier(r, system, value)]
        return found


def _parse(body: bytes, resource_type: str) -> FhirJson | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        return None
    return data


def _version(resource: FhirJson) -> int:
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return int(version) if isinstance(version, str) and version.isdigit() else 1


def _split_token(token: str) -> tuple[str | None, str]:
    """`system|value` (FHIR-escaped) -> (system, value); a bare `value` has no system."""
    parts: list[str] = []
    current, escaped = "", False
    for char in token:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == "|" and not parts:
            parts.append(current)
            current = ""
        else:
            current += char
    return (parts[0], current) if parts else (None, current)


def _has_identifier(resource: FhirJson, system: str | None, value: str) -> bool:
    identifiers = resource.get("identifier")
    return any(
        isinstance(item, dict)
        and item.get("value") == value
        and (system is None or item.get("system") == system)
        for item in (identifiers if isinstance(identifiers, list) else [])
    )


def _answer(status: int, resource: FhirJson) -> httpx.Response:
    headers = {"Content-Type": "application/fhir+json"}
    if resource.get("resourceType") not in {"Bundle", "OperationOutcome"}:
        headers["ETag"] = f'W/"{_version(resource)}"'
    return httpx.Response(status, headers=headers, content=json.dumps(resource).encode())


def _outcome(status: int, code: str, text: str) -> httpx.Response:
    outcome: FhirJson = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return _answer(status, outcome)
