"""EHR over FHIR R4: the `EhrClient` interface, the FHIR client, the factory.

The app depends on `EhrClient` only. `create_fhir_client(settings)` picks by EHR_PROVIDER:

- `fhir`: `FhirClient`, FHIR R4 REST (`application/fhir+json`) over httpx at FHIR_BASE_URL,
  authenticated by SMART Backend Services or a static bearer token (`smart.py`), with the
  timeouts, retry rules and circuit breaker of `exchange.py`.
- `fake` (the default outside production; refused in it): the same `FhirClient` talking to
  an in-process FHIR server (`memory.py`) instead of the network, so `make run` works with no
  account and runs the real client code.
- `none` (the default in production): `DisabledEhr`, which answers every call with
  `EhrNotConfiguredError` (503).

Patients are made with a conditional create (`If-None-Exist: identifier=system|value`): the
identifier carries our own id (e.g. the lead's), so a repeated or retried call finds the
patient it made instead of making a second. Updates are conditional on the version read
(`If-Match`), so a change made meanwhile in the EHR is never overwritten.
"""

import json
import logging
import re
from typing import Protocol
from urllib.parse import quote, urlencode, urljoin

import httpx
from pydantic import ValidationError

from backend.app.core.circuit import CircuitBreaker
from backend.app.core.config import EhrProvider, Settings
from backend.app.core.errors import (
    EhrError,
    EhrNotConfiguredError,
    EhrResourceNotFoundError,
    EhrVersionConflictError,
)
from backend.app.integrations.fhir.exchange import (
    FHIR_JSON,
    FhirCall,
    FhirExchange,
    error_for,
    json_object,
)
from backend.app.integrations.fhir.memory import FAKE_BASE_URL, InMemoryFhirServer
from backend.app.integrations.fhir.resources import (
    FHIR_ID,
    Bundle,
    FhirJson,
    FhirResource,
    Patient,
    PatientRecord,
    SearchResult,
    new_patient,
    patient_record,
    token_search,
    with_contact,
)
from backend.app.integrations.fhir.smart import (
    AccessTokenSource,
    SmartBackendAuth,
    StaticToken,
    load_private_key,
)

logger = logging.getLogger("app.integrations.fhir")

_ETAG = re.compile(r'^(?:W/)?"(.+)"$')
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


# --- 1. The interface the app depends on ------------------------------------------------


class EhrClient(Protocol):
    """What the app needs from an EHR. Implementations raise our errors, never httpx's.

    Every method may also raise `EhrUnavailableError` (503: down, unreachable, rate
    limiting), `CircuitOpenError` (503: failing for a while, calls paused), `EhrNoAnswerError`
    / `EhrError` (502), `EhrAuthError` (502: credentials refused) and, with EHR_PROVIDER=none,
    `EhrNotConfiguredError` (503).
    """

    async def ensure_patient(
        self,
        *,
        identifier_system: str,
        identifier_value: str,
        name: str,
        phone: str | None,
        email: str | None,
    ) -> PatientRecord:
        """Create the Patient with this identifier, or return the one that already has it.

        A conditional create (`If-None-Exist: identifier=system|value`): calling it again,
        or a retry after a lost answer, returns the same patient; an existing patient is
        returned as it is (not updated).

        Raises:
            EhrRequestRejectedError: the EHR refused the patient (its text says why).
            EhrMultipleMatchesError: the EHR already holds several patients with it.
        """
        ...

    async def read_patient(self, patient_id: str) -> PatientRecord:
        """Read a Patient by its id, as it is now.

        Raises:
            EhrResourceNotFoundError: no such patient (404).
            EhrResourceDeletedError: the patient was deleted (410).
        """
        ...

    async def find_patients(
        self, *, identifier_system: str, identifier_value: str
    ) -> list[PatientRecord]:
        """Return the patients carrying this identifier (normally none or one)."""
        ...

    async def update_patient(
        self,
        patient_id: str,
        *,
        version_id: str,
        name: str,
        phone: str | None,
        email: str | None,
    ) -> PatientRecord:
        """Replace the patient's names, phones and emails; keep everything else.

        `version_id` is the version the change is based on; the write is conditional on it
        (`If-Match`), so a change made meanwhile by someone else is never overwritten.

        Raises:
            EhrVersionConflictError: the patient changed since `version_id`; nothing written.
            EhrResourceNotFoundError: no such patient (`EhrResourceDeletedError` if deleted).
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


# --- 2. The FHIR client -----------------------------------------------------------------


class FhirClient:
    """FHIR R4 REST over httpx: generic read, search, create and update, and patient helpers.

    The generic methods take and return FHIR JSON (`FhirJson`); add a resource type by
    building its body and calling them, as the patient methods do.
    """

    def __init__(
        self,
        *,
        base_url: str,
        auth: AccessTokenSource | None,
        timeout_seconds: float,
        max_retries: int,
        max_retry_wait_seconds: float,
        max_search_pages: int,
        circuit: CircuitBreaker,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._max_pages = max_search_pages
        self._exchange = FhirExchange(
            auth=auth,
            timeout_seconds=timeout_seconds,
            max_retries=max_retries,
            max_retry_wait_seconds=max_retry_wait_seconds,
            circuit=circuit,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._exchange.aclose()

    # --- patients (the EhrClient interface) ---------------------------------------------

    async def ensure_patient(
        self,
        *,
        identifier_system: str,
        identifier_value: str,
        name: str,
        phone: str | None,
        email: str | None,
    ) -> PatientRecord:
        """Conditionally create the patient (see `EhrClient.ensure_patient`)."""
        body = new_patient(
            identifier_system=identifier_system,
            identifier_value=identifier_value,
            name=name,
            phone=phone,
            email=email,
        )
        condition = {"identifier": token_search(identifier_system, identifier_value)}
        found = await self.create(body, if_none_exist=condition)
        record = _patient(found.body)
        logger.info("fhir patient ensured", extra={"patient_id": record.id, "new": found.created})
        return record

    async def read_patient(self, patient_id: str) -> PatientRecord:
        """Read one patient (see `EhrClient.read_patient`)."""
        return _patient((await self.read("Patient", patient_id)).body)

    async def find_patients(
        self, *, identifier_system: str, identifier_value: str
    ) -> list[PatientRecord]:
        """Search patients by identifier (see `EhrClient.find_patients`)."""
        params = {"identifier": token_search(identifier_system, identifier_value)}
        found = await self.search("Patient", params)
        return [_patient(resource) for resource in found.resources]

    async def update_patient(
        self,
        patient_id: str,
        *,
        version_id: str,
        name: str,
        phone: str | None,
        email: str | None,
    ) -> PatientRecord:
        """Change name and contacts under `If-Match` (see `EhrClient.update_patient`)."""
        current = await self.read("Patient", patient_id)
        if current.version_id != version_id:
            raise EhrVersionConflictError
        body = with_contact(current.body, name=name, phone=phone, email=email)
        return _patient((await self.update(body, version_id=version_id)).body)

    # --- generic FHIR interactions ------------------------------------------------------

    async def read(self, resource_type: str, resource_id: str) -> FhirResource:
        """`GET [base]/{type}/{id}`.

        Raises:
            EhrResourceNotFoundError: 404 (or an id that cannot exist).
            EhrResourceDeletedError: 410.
        """
        if not FHIR_ID.match(resource_id):
            raise EhrResourceNotFoundError(f"{resource_id!r} is not a FHIR id.")
        response = await self._exchange.request(
            FhirCall("GET", self._url(resource_type, resource_id), True)
        )
        if response.status_code != 200:
            raise error_for(response, "read")
        return _resource(response, resource_type)

    async def search(
        self, resource_type: str, params: dict[str, str], *, max_pages: int | None = None
    ) -> SearchResult:
        """`GET [base]/{type}?params`, following each page's `next` link.

        At most `max_pages` pages (default FHIR_MAX_SEARCH_PAGES) are read; `truncated`
        says whether more were left. A `next` link outside the base URL is refused, so our
        token never goes elsewhere.
        """
        limit = max_pages or self._max_pages
        query: dict[str, str] | None
        url, query = self._url(resource_type), dict(params)  # later pages: the link's own query
        resources: list[FhirJson] = []
        total: int | None = None
        for page in range(limit):
            response = await self._exchange.request(FhirCall("GET", url, safe=True, params=query))
            if response.status_code != 200:
                raise error_for(response, "search")
            bundle = _bundle(response)
            total = bundle.total if page == 0 else total
            resources.extend(bundle.matches(resource_type))
            next_url = bundle.next_url()
            if next_url is None:
                return SearchResult(resources=resources, total=total, truncated=False)
            url, query = self._under_base(next_url), None
        logger.warning("fhir search stopped at the page limit", extra={"pages": limit})
        return SearchResult(resources=resources, total=total, truncated=True)

    async def create(
        self, resource: FhirJson, *, if_none_exist: dict[str, str] | None = None
    ) -> FhirResource:
        """`POST [base]/{type}`; conditional (and safe to retry) with `if_none_exist`.

        `if_none_exist` holds search parameters (e.g. `{"identifier": "sys|val"}`): when
        one resource matches, the server returns it (`created` False) instead of creating.

        Raises:
            EhrRequestRejectedError: the server refused the resource.
            EhrMultipleMatchesError: `if_none_exist` matched several resources (412).
        """
        resource_type = _resource_type(resource)
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = urlencode(if_none_exist, quote_via=quote, safe=":/|")
        response = await self._exchange.request(
            FhirCall(
                "POST",
                self._url(resource_type),
                safe=bool(if_none_exist),
                headers=headers,
                content=json.dumps(resource).encode(),
            )
        )
        if response.status_code not in {200, 201}:
            raise error_for(response, "create")
        found = await self._created(response, resource_type)
        return FhirResource(found.body, found.version_id, created=response.status_code == 201)

    async def update(self, resource: FhirJson, *, version_id: str) -> FhirResource:
        """`PUT [base]/{type}/{id}` with `If-Match: W/"{version_id}"`.

        Raises:
            EhrVersionConflictError: the resource is no longer at `version_id` (409/412).
            EhrResourceNotFoundError: no such resource (`EhrResourceDeletedError` if deleted).
            EhrRequestRejectedError: the server refused the resource.
        """
        resource_type, resource_id = _resource_type(resource), str(resource.get("id"))
        if not FHIR_ID.match(resource_id):
            raise EhrResourceNotFoundError(f"{resource_id!r} is not a FHIR id.")
        headers = {
            "Content-Type": FHIR_JSON,
            "Prefer": "return=representation",
            "If-Match": f'W/"{version_id}"',
        }
        response = await self._exchange.request(
            FhirCall(
                "PUT",
                self._url(resource_type, resource_id),
                safe=False,
                headers=headers,
                content=json.dumps(resource).encode(),
            )
        )
        if response.status_code not in {200, 201}:
            raise error_for(response, "update")
        return await self._created(response, resource_type)

    # --- the HTTP machinery -------------------------------------------------------------

    def _url(self, *parts: str) -> str:
        return "/".join([self._base, *(quote(part, safe="") for part in parts)])

    def _under_base(self, url: str) -> str:
        absolute = urljoin(self._base + "/", url)
        if absolute == self._base or absolute.startswith((self._base + "/", self._base + "?")):
            return absolute
        raise EhrError("The EHR sent a paging link outside its base URL; it was not followed.")

    async def _created(self, response: httpx.Response, resource_type: str) -> FhirResource:
        """The resource a create or update answered, read back if the body does not hold it.

        Servers may answer `Prefer: return=representation` with an empty body or an
        OperationOutcome; the `Location` header still names the resource.
        """
        body = json_object(response)
        if body is not None and body.get("resourceType") == resource_type:
            return _resource(response, resource_type)
        location = response.headers.get("Location") or response.headers.get("Content-Location")
        match = re.search(rf"{resource_type}/([A-Za-z0-9\-.]{{1,64}})", location or "")
        if match is None:
            raise EhrError("The EHR answered a write without the resource or its location.")
        return await self.read(resource_type, match.group(1))


def _resource_type(resource: FhirJson) -> str:
    """The resource's type, checked to be a FHIR type name (it becomes part of the URL).

    Raises:
        ValueError: the body has no valid `resourceType` (a bug in the caller).
    """
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        raise ValueError(f"Not a FHIR resource type: {kind!r}")
    return kind


def _resource(response: httpx.Response, resource_type: str) -> FhirResource:
    body = json_object(response)
    if body is None or body.get("resourceType") != resource_type:
        raise EhrError(f"The EHR answered something that is not a {resource_type}.")
    etag = _ETAG.match(response.headers.get("ETag", ""))
    meta = body.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    version_id = etag.group(1) if etag else (version if isinstance(version, str) else None)
    return FhirResource(body=body, version_id=version_id)


def _bundle(response: httpx.Response) -> Bundle:
    try:
        return Bundle.model_validate(json_object(response))
    except ValidationError as exc:
        raise EhrError("The EHR answered a search with something that is not a Bundle.") from exc


def _patient(body: FhirJson) -> PatientRecord:
    try:
        return patient_record(Patient.model_validate(body))
    except ValidationError as exc:
        raise EhrError("The EHR answered a Patient we cannot read.") from exc


# --- 3. Off: EHR_PROVIDER=none ----------------------------------------------------------


class DisabledEhr:
    """The EHR is off: every call raises `EhrNotConfiguredError` (503)."""

    async def ensure_patient(
        self,
        *,
        identifier_system: str,
        identifier_value: str,
        name: str,
        phone: str | None,
        email: str | None,
    ) -> PatientRecord:
        """Refuse: no EHR is configured."""
        raise EhrNotConfiguredError

    async def read_patient(self, patient_id: str) -> PatientRecord:
        """Refuse: no EHR is configured."""
        raise EhrNotConfiguredError

    async def find_patients(
        self, *, identifier_system: str, identifier_value: str
    ) -> list[PatientRecord]:
        """Refuse: no EHR is configured."""
        raise EhrNotConfiguredError

    async def update_patient(
        self,
        patient_id: str,
        *,
        version_id: str,
        name: str,
        phone: str | None,
        email: str | None,
    ) -> PatientRecord:
        """Refuse: no EHR is configured."""
        raise EhrNotConfiguredError

    async def aclose(self) -> None:
        """Nothing to release."""


# --- 4. The factory ---------------------------------------------------------------------


def create_fhir_client(settings: Settings) -> EhrClient:
    """Return the EHR client EHR_PROVIDER names; call `aclose()` at shutdown.

    Raises:
        ValueError: the private key cannot be read or does not fit FHIR_SIGNING_ALGORITHM.
    """
    if settings.ehr_provider is EhrProvider.NONE:
        return DisabledEhr()
    fake = settings.ehr_provider is EhrProvider.FAKE
    return FhirClient(
        base_url=FAKE_BASE_URL if fake else settings.fhir_base_url,
        auth=None if fake else _auth(settings),
        timeout_seconds=settings.fhir_timeout_seconds,
        max_retries=settings.fhir_max_retries,
        max_retry_wait_seconds=settings.fhir_max_retry_wait_seconds,
        max_search_pages=settings.fhir_max_search_pages,
        circuit=CircuitBreaker(
            name="The EHR",
            failure_threshold=settings.fhir_circuit_failures,
            open_seconds=settings.fhir_circuit_open_seconds,
        ),
        transport=InMemoryFhirServer() if fake else None,
    )


def _auth(settings: Settings) -> AccessTokenSource:
    """A static token when FHIR_ACCESS_TOKEN is set, else SMART Backend Services."""
    if settings.fhir_access_token and settings.fhir_access_token.get_secret_value():
        return StaticToken(settings.fhir_access_token.get_secret_value())
    pem = settings.fhir_private_key.get_secret_value() if settings.fhir_private_key else None
    return SmartBackendAuth(
        client_id=settings.fhir_client_id or "",
        private_key=load_private_key(pem=pem, path=settings.fhir_private_key_path),
        key_id=settings.fhir_key_id or "",
        algorithm=settings.fhir_signing_algorithm,
        scope=settings.fhir_scopes,
        fhir_base_url=settings.fhir_base_url,
        token_url=settings.fhir_token_url or None,
    )
