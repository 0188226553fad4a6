"""The FHIR R4 shapes we read, as small pydantic models of the fields we use.

Not `fhir.resources`: measured here (8.3.0, pydantic 2.14) importing Patient, Bundle and
OperationOutcome costs about 110 ms and 17 MiB of memory (the whole app imports in about
800 ms and 89 MiB), ships 27 MB, has no R4 package (R4B or R5 only), and refuses any field
it does not know: a server that adds one would break our reads. These models ignore what
they do not name, so a resource from any R4 server reads as long as its fields we use do.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

FhirJson = dict[str, JsonValue]
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # R4 `id`: what may follow `Patient/`
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_OUTCOME_TEXT = 300


class _Element(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Identifier(_Element):
    """`Identifier`: a business id (`system` names the namespace, `value` the id in it)."""

    system: str | None = None
    value: str | None = None


class HumanName(_Element):
    """`HumanName`: the parts we read and write."""

    use: str | None = None
    text: str | None = None
    family: str | None = None
    given: list[str] = Field(default_factory=list)


class ContactPoint(_Element):
    """`ContactPoint`: a phone number or an email (`system`), with its `use`."""

    system: str | None = None
    value: str | None = None
    use: str | None = None


class Meta(_Element):
    """`Meta`: the version and last change the server keeps for every resource."""

    version_id: str | None = Field(default=None, alias="versionId")
    last_updated: datetime | None = Field(default=None, alias="lastUpdated")


class Patient(_Element):
    """`Patient`, reduced to the fields the app uses."""

    resource_type: str = Field(alias="resourceType", pattern="^Patient$")
    id: str
    meta: Meta = Field(default_factory=Meta)
    identifier: list[Identifier] = Field(default_factory=list)
    name: list[HumanName] = Field(default_factory=list)
    telecom: list[ContactPoint] = Field(default_factory=list)


class BundleLink(_Element):
    """`Bundle.link`: `relation` is `self`, `next`, `previous`, ..."""

    relation: str
    url: str


class BundleEntrySearch(_Element):
    """`Bundle.entry.search`: `match`, `include` or `outcome`."""

    mode: str | None = None


class BundleEntry(_Element):
    """`Bundle.entry`: one resource of a search page."""

    resource: FhirJson | None = None
    search: BundleEntrySearch | None = None


class Bundle(_Element):
    """`Bundle` of type `searchset`: one page of search results."""

    resource_type: str = Field(alias="resourceType", pattern="^Bundle$")
    type: str | None = None
    total: int | None = None
    link: list[BundleLink] = Field(default_factory=list)
    entry: list[BundleEntry] = Field(default_factory=list)

    def next_url(self) -> str | None:
        """The page after this one, if any."""
        return next((link.url for link in self.link if link.relation == "next"), None)

    def matches(self, resource_type: str) -> list[FhirJson]:
        """The resources that matched the search (not included ones, not outcomes)."""
        return [
            entry.resource
            for entry in self.entry
            if entry.resource is not None
            and entry.resource.get("resourceType") == resource_type
            and (entry.search is None or entry.search.mode in (None, "match"))
        ]


class CodeableConcept(_Element):
    """`CodeableConcept`: only its text."""

    text: str | None = None


class OperationOutcomeIssue(_Element):
    """`OperationOutcome.issue`: severity, a code from IssueType, and human text."""

    severity: str | None = None
    code: str | None = None
    diagnostics: str | None = None
    details: CodeableConcept | None = None


class OperationOutcome(_Element):
    """`OperationOutcome`: what a FHIR server sends back with an error."""

    resource_type: str = Field(alias="resourceType", pattern="^OperationOutcome$")
    issue: list[OperationOutcomeIssue] = Field(default_factory=list)

    def text(self) -> str | None:
        """The issues' own words, joined and bounded, without control characters."""
        parts = [i.diagnostics or (i.details.text if i.details else None) for i in self.issue]
        joined = "; ".join(part for part in parts if part)
        cleaned = _CONTROL.sub(" ", joined).strip()
        return cleaned[:MAX_OUTCOME_TEXT] or None

    def first_code(self) -> str | None:
        """The code of the first issue (`invalid`, `not-found`, `conflict`, ...)."""
        return self.issue[0].code if self.issue else None


# --- Patients as the app sees them --------------------------------------------------------


@dataclass(frozen=True)
class PatientRecord:
    """A Patient in the EHR as the app uses it.

    `version_id` is `meta.versionId` (pass it back to `update_patient`); `last_updated` is
    UTC. `name`, `phone` and `email` are the first of each the EHR holds (official name and
    mobile phone first), or None.
    """

    id: str
    version_id: str | None
    last_updated: datetime | None
    name: str | None
    phone: str | None
    email: str | None

    @property
    def reference(self) -> str:
        """The FHIR reference to this patient: `Patient/<id>`."""
        return f"Patient/{self.id}"


def patient_record(patient: Patient) -> PatientRecord:
    """Reduce a Patient to a `PatientRecord`."""
    updated = patient.meta.last_updated
    if updated is not None:
        updated = updated.replace(tzinfo=UTC) if updated.tzinfo is None else updated
        updated = updated.astimezone(UTC)
    return PatientRecord(
        id=patient.id,
        version_id=patient.meta.version_id,
        last_updated=updated,
        name=_display_name(patient.name),
        phone=_first_contact(patient.telecom, "phone"),
        email=_first_contact(patient.telecom, "email"),
    )


def _display_name(names: list[HumanName]) -> str | None:
    ranked = sorted(names, key=lambda n: {"official": 0, "usual": 1}.get(n.use or "", 2))
    for name in ranked:
        text = name.text or " ".join([*name.given, name.family or ""]).strip()
        if text:
            return text
    return None


def _first_contact(points: list[ContactPoint], system: str) -> str | None:
    found = [p for p in points if p.system == system and p.value]
    found.sort(key=lambda p: 0 if p.use == "mobile" else 1)
    return found[0].value if found else None


def human_names(name: str) -> list[JsonValue]:
    """An official `HumanName` from one full-name string (the last word is the family name).

    No name at all for a blank string: FHIR allows no empty values.
    """
    words = name.split()
    if not words:
        return []
    human: FhirJson = {"use": "official", "text": " ".join(words), "family": words[-1]}
    if len(words) > 1:
        human["given"] = list(words[:-1])
    return [human]


def contact_points(phone: str | None, email: str | None) -> list[JsonValue]:
    """`telecom` entries for a phone number (mobile) and an email, those given."""
    points: list[JsonValue] = []
    if phone and phone.strip():
        points.append({"system": "phone", "value": phone.strip(), "use": "mobile"})
    if email and email.strip():
        points.append({"system": "email", "value": email.strip()})
    return points


def new_patient(
    *,
    identifier_system: str,
    identifier_value: str,
    name: str,
    phone: str | None,
    email: str | None,
) -> FhirJson:
    """The body of a Patient create: our identifier, the name, phone and email."""
    patient: FhirJson = {
        "resourceType": "Patient",
        "identifier": [{"system": identifier_system, "value": identifier_value}],
        "name": human_names(name),
        "telecom": contact_points(phone, email),
    }
    return {key: value for key, value in patient.items() if value != []}


def with_contact(patient: FhirJson, *, name: str, phone: str | None, email: str | None) -> FhirJson:
    """`patient` with its names, phones and emails replaced; other fields kept as they are."""
    kept = [
        point
        for point in _json_list(patient.get("telecom"))
        if not (isinstance(point, dict) and point.get("system") in {"phone", "email"})
    ]
    updated: FhirJson = {
        **patient,
        "name": human_names(name),
        "telecom": contact_points(phone, email) + kept,
    }
    return {key: value for key, value in updated.items() if value != []}


def _json_list(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def token_search(system: str, value: str) -> str:
    r"""A FHIR token search value `system|value`, escaping FHIR's `\ | , $` in each part."""
    return f"{_escape(system)}|{_escape(value)}"


def _escape(part: str) -> str:
    for char in ("\\", "|", ",", "$"):
        part = part.replace(char, "\\" + char)
    return part


@dataclass(frozen=True)
class FhirResource:
    """A resource as the server answered it, with its version (from ETag or meta).

    `created` is True when the server answered 201 to a create (False when a conditional
    create found the resource already there).
    """

    body: FhirJson
    version_id: str | None
    created: bool = False

    @property
    def id(self) -> str | None:
        """The resource's id, if the body has one."""
        value = self.body.get("id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class SearchResult:
    """What a search found: the matching resources of every page read.

    `total` is the server's count, if it sent one; `truncated` is True when more pages were
    left unread because of the page limit.
    """

    resources: list[FhirJson]
    total: int | None
    truncated: bool
