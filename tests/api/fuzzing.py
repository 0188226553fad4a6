"""Property-based fuzzing of a running app with schemathesis, as a plain function of the suite.

`fuzz(base_url, ...)` reads the app's own `/openapi.json` and runs schemathesis' engine (the
same one its CLI runs: examples, coverage, fuzzing and stateful phases) with EVERY check the
installed version registers, over real HTTP, with a fixed seed and derandomized generation,
then returns what failed as plain data. The tests decide what to assert.

Object-level authorization is exercised twice, with two members:
- schemathesis' own `object_level_authorization` check, fed a Web Fuzzing Commons auth
  document naming both members as peers: it replays the owner's successful reads as the peer
  and fails when the peer gets an equivalent body;
- our `foreign_ids_answer_404` check: every request the owner made successfully on a path that
  names ids (`/leads/{lead_id}`, `/leads/{lead_id}/messages`, ...) is sent again, unchanged, with
  the peer's token, and must answer exactly 404, as a missing record does (the contract); a page
  the owner read must not list any of the owner's ids to the peer.

Besides what Hypothesis draws, every body field and query or path parameter is sometimes given
one of HOSTILE_VALUES (NUL, integers past 64 bits, dates at the ends of the calendar) wherever
its schema allows it, so the values that break PostgreSQL are tried on every run.

Cost is bounded by `max_examples` (deterministic), not by a time budget: schemathesis' own
`max-time` keeps repeating the fuzzing phases until the time is spent, so what a run covers
would depend on the machine. `time_cap` is only a safety net that stops the engine and says so.
"""

import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from schemathesis import BaseSchema, Case, CheckContext, Response
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import StopReason, events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder

from tests.entities import registered_plans

SEED = 20261128

# Statuses a request that the schema calls valid may still get, beyond schemathesis' defaults
# (2xx, 3xx, 401, 403, 404, 409, 429), per operation. Each is a rule no schema can state.
POSITIVE_DATA_EXTRA_STATUSES: dict[str, list[str]] = {
    # Stripe signs the raw body; a schema-valid `Stripe-Signature` header is still a forgery.
    "POST /api/v1/webhooks/stripe": ["400"],
}

# Rules the server enforces that OpenAPI cannot state, per operation: a 422 whose `details` name
# only these (location, message fragment) pairs is the expected answer to data the schema calls
# valid, so `positive_data_acceptance` does not count it. Anything else it names still fails.
PHONE_RULE = "is not a phone number"  # libphonenumber decides, not a pattern
EMAIL_RULE = "special-use or reserved name"  # e.g. `a@b.test`
SERVER_RULES: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "POST /api/v1/auth/register": [(("body", "email"), EMAIL_RULE)],
    # example:lead start
    # "Now" moves, and an offset can carry year 9999 past the calendar's end once in UTC; a
    # schema can state neither.
    "POST /api/v1/leads/{lead_id}/messages": [
        (("body", "send_at"), "must be in the future"),
        (("body", "send_at"), "out of range once converted to UTC"),
    ],
    # JSON Schema counts 5000.0 as an integer; the API's strict integers refuse it (contract).
    "POST /api/v1/leads/{lead_id}/payments": [(("body", "amount"), "valid integer")],
    # example:lead end
}
UTC_RULE = "out of range once converted to UTC"
INTEGER_RULE = "valid integer"  # 5.0 for an integer: refused, as the contract's strict types


def _entity_rules() -> None:
    """Add the phone and email rules of every registered entity (from its spec)."""
    for plan in registered_plans():
        kinds = {
            "phone": PHONE_RULE,
            "email": EMAIL_RULE,
            "integer": INTEGER_RULE,
            "reference": INTEGER_RULE,
        }
        rules = [
            (("body", name), kinds[spec.type])
            for name, spec in plan.input_fields.items()
            if spec.type in kinds
        ]
        rules += [
            (("body", f"{name}_amount"), INTEGER_RULE)
            for name, spec in plan.input_fields.items()
            if spec.type == "money"
        ]
        collection = f"/api/v1{plan.names.url}"
        for name, spec in plan.fields.items():  # year 9999 with an offset leaves the calendar
            if spec.type == "datetime":
                rules.append((("body", name), UTC_RULE))
                SERVER_RULES.setdefault(f"GET {collection}", []).extend(
                    (("query", f"{name}_{end}"), UTC_RULE) for end in ("from", "to")
                )
        SERVER_RULES.setdefault(f"POST {collection}", []).extend(rules)
        item = f"PATCH {collection}/{{{plan.names.id_param}}}"
        SERVER_RULES.setdefault(item, []).extend(rules)


_entity_rules()

# Entities every user shares (not owner-scoped): another user seeing them is the point.
SHARED_PATHS = {
    f"/api/v1{plan.names.url}" for plan in registered_plans() if not plan.spec.owner_scoped
}

# Failures of a check that are documented behaviour, not defects, by the error code answered.
EXPECTED_FAILURES: dict[str, set[str]] = {
    # example:lead start
    # A lead exists without an EHR patient until it is converted: reading the link of a lead
    # just created is a 404 `ehr_patient_not_linked`, not a missing resource.
    "ensure_resource_availability": {"ehr_patient_not_linked"},
    # example:lead end
}

# Values known to break a data layer, offered to every body field and query parameter whose
# schema they satisfy (schemathesis "dictionaries"), so each run tries them whatever the seed
# draws otherwise: PostgreSQL text cannot hold NUL, BIGINT ends at 2**63 - 1, Python's
# datetime at year 9999.
HOSTILE_VALUES: list[str | int] = [
    "a\x00b",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    2**63,
    2**64,
    -(2**63) - 1,
]
HOSTILE_PROBABILITY = 0.05

# The owner's `Authorization` header -> the peer's, for `foreign_ids_answer_404`.
_PEERS: dict[str, str] = {}
_PEERS_LOCK = threading.Lock()
_PATH_PARAMETER = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True)
class Identity:
    """A user the fuzzer acts as: a name for reports and the headers that authenticate them."""

    name: str
    headers: dict[str, str]


@dataclass(frozen=True)
class FuzzFailure:
    """One distinct failure: the check, the operation, and how to reproduce it."""

    check: str
    operation: str
    title: str
    message: str
    reproduce: str
    status: int | None
    body: str

    def describe(self) -> str:
        """Return a few lines a person can act on."""
        response = f"-> {self.status} {self.body[:300]}" if self.status is not None else ""
        message = self.message.strip().replace("\n", "\n    ")
        return (
            f"[{self.check}] {self.operation}: {self.title}\n    {message}\n"
            f"    {self.reproduce}\n    {response}"
        )


@dataclass
class FuzzReport:
    """What a run did and found.

    `failures` holds one failure per check, operation, title, status and error message (the
    contract's `message`, e.g. "check body.phone"), so each distinct cause shows once.
    """

    failures: list[FuzzFailure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks_run: set[str] = field(default_factory=set)
    operations: set[str] = field(default_factory=set)
    requests: int = 0
    expected_rejections: int = 0
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False

    def describe(self) -> str:
        """Return every failure and harness error, one block each."""
        lines = [failure.describe() for failure in self.failures]
        lines += [f"[harness error] {error}" for error in self.errors]
        head = (
            f"{len(self.failures)} failures, {len(self.errors)} errors; {self.requests} requests "
            f"({self.expected_rejections} refused by SERVER_RULES) "
            f"in {self.seconds:.1f} s ({self._phases()}) over {len(self.operations)} scenarios: "
            f"{', '.join(sorted(self.operations))}; "
            f"checks run: {', '.join(sorted(self.checks_run))}"
        )
        return head + "\n" + "\n".join(lines)

    def _phases(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phase_seconds.items())


def all_check_names() -> list[str]:
    """Every check the installed schemathesis registers, ours included."""
    names: list[str] = CHECKS.get_all_names()
    return names


@schemathesis.check
def foreign_ids_answer_404(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Replay the owner's successful request as the peer: ids in the path must answer 404.

    A page the owner read must not list any of the owner's ids when the peer reads it.
    """
    request = response.request
    peer_authorization = _PEERS.get(request.headers.get("Authorization", ""))
    if peer_authorization is None or not 200 <= response.status_code < 300:
        return None
    if any(case.path == shared or case.path.startswith(f"{shared}/") for shared in SHARED_PATHS):
        return None
    names_ids = bool(_PATH_PARAMETER.search(case.path))
    owner_ids = _page_ids(response.content) if case.method == "GET" else set()
    if not names_ids and not owner_ids:
        return None
    replay = request.copy()
    replay.headers["Authorization"] = peer_authorization
    with requests.Session() as session:
        answer = session.send(replay, timeout=30, allow_redirects=False)
    where = f"{replay.method} {replay.url} as the peer"
    if names_ids and answer.status_code != 404:
        raise AssertionError(
            f"Another user's record answered {answer.status_code}, not 404: {where} "
            f"(the owner got {response.status_code})"
        )
    leaked = owner_ids & _page_ids(answer.content)
    if leaked:
        raise AssertionError(f"The page lists another user's ids {sorted(leaked)}: {where}")
    return True


def _page_ids(content: bytes) -> set[Any]:
    try:
        body = json.loads(content)
    except ValueError:
        return set()
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return set()
    return {item.get("id") for item in body["items"] if isinstance(item, dict)}


def fuzz_config(
    *,
    base_url: str,
    parameter_keys: Iterable[str],
    auth_path: Path,
    user: str,
    peers: Iterable[str] = (),
    seed: int = SEED,
    max_examples: int = 25,
    stateful_steps: int = 6,
) -> SchemathesisConfig:
    """Return the run's configuration: every check, fixed seed, nothing written to disk.

    Args:
        base_url: where the app serves.
        parameter_keys: `query.q`, `body.name`...: where HOSTILE_VALUES are offered.
        auth_path: the Web Fuzzing Commons auth document naming the users.
        user: the user every request is sent as.
        peers: users that must not see each other's objects (schemathesis' own check).
        seed: Hypothesis seed; generation is derandomized besides.
        max_examples: examples per operation and phase.
        stateful_steps: the longest chain of linked calls in the stateful phase.
    """
    peer_names = {"peers": list(peers)} if peers else {}
    checks: dict[str, Any] = {"enabled": True}
    checks.update({name: {"enabled": True} for name in all_check_names()})
    operations = [
        {
            "include-name": label,
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "429", *extra]
                }
            },
        }
        for label, extra in POSITIVE_DATA_EXTRA_STATUSES.items()
    ]
    return SchemathesisConfig.from_dict(
        {
            "base-url": base_url,
            "seed": seed,
            "cache": {"enabled": False},
            "dictionaries": {"hostile": {"values": HOSTILE_VALUES}},
            "parameters": {
                key: {"dictionary": "hostile", "probability": HOSTILE_PROBABILITY}
                for key in parameter_keys
            },
            "generation": {"deterministic": True, "max-examples": max_examples, "database": "none"},
            "phases": {"stateful": {"max-steps": stateful_steps}},
            "checks": checks,
            "operations": operations,
            "auth": {"wfc": {"path": str(auth_path), "user": user, **peer_names}},
        }
    )


def parameter_keys(openapi: dict[str, Any]) -> list[str]:
    """Every `query.<name>`, `path.<name>` and `body.<field>` the operations of `openapi` take.

    Enums (a `$ref`) are left out: they hold no free value, and schemathesis 4.32 cannot bind a
    dictionary to a referenced parameter schema.
    """
    keys: set[str] = set()
    components = openapi.get("components", {}).get("schemas", {})
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in {"query", "path"} and not _refers(parameter):
                    keys.add(f"{parameter['in']}.{parameter['name']}")
            for media in operation.get("requestBody", {}).get("content", {}).values():
                body = media.get("schema", {})
                body = components.get(body.get("$ref", "").rsplit("/", 1)[-1], body)
                fields = body.get("properties", {})
                keys.update(f"body.{name}" for name, field in fields.items() if not _refers(field))
    return sorted(keys)


def _refers(schema: Any) -> bool:
    return '"$ref"' in json.dumps(schema)


def write_auth_document(path: Path, identities: Iterable[Identity]) -> Path:
    """Write the Web Fuzzing Commons auth document schemathesis reads the users from."""
    entries = [
        {
            "name": identity.name,
            "fixedHeaders": [{"name": k, "value": v} for k, v in identity.headers.items()],
        }
        for identity in identities
    ]
    path.write_text(json.dumps({"auth": entries}))
    return path


def fuzz(
    base_url: str,
    *,
    identities: list[Identity],
    workdir: Path,
    peers: bool = True,
    only_paths: str | None = None,
    seed: int = SEED,
    max_examples: int = 25,
    time_cap: float = 60.0,
) -> FuzzReport:
    """Fuzz the app at `base_url` as `identities[0]`; return the distinct failures.

    Blocking (it sends requests from this thread): call it from a worker thread in async tests.

    Args:
        base_url: where the app serves, e.g. `http://127.0.0.1:8123`.
        identities: the users; requests go as the first. With `peers`, the second is the peer
            of the first for both object-level authorization checks.
        workdir: a folder for the auth document.
        peers: whether the first two identities must not see each other's objects.
        only_paths: a regular expression; fuzz only the operations whose path matches it.
        seed: Hypothesis seed.
        max_examples: examples per operation and phase.
        time_cap: seconds after which the engine is stopped (`stopped_early`).
    """
    owner = identities[0]
    peer = identities[1] if peers and len(identities) > 1 else None
    openapi = requests.get(f"{base_url}/openapi.json", timeout=30).json()
    config = fuzz_config(
        base_url=base_url,
        parameter_keys=parameter_keys(openapi),
        auth_path=write_auth_document(workdir / "fuzz-auth.json", identities),
        user=owner.name,
        peers=[owner.name, peer.name] if peer else [],
        seed=seed,
        max_examples=max_examples,
    )
    schema = schemathesis.openapi.from_dict(openapi, config=config)
    if only_paths:
        # An exclude, not `include()`: schemathesis ORs includes with the selection the
        # per-operation settings above make, which selects every operation.
        pattern = re.compile(only_paths)
        schema = schema.exclude(lambda ctx: not pattern.search(ctx.operation.path))
    if peer:
        with _PEERS_LOCK:
            _PEERS[owner.headers["Authorization"]] = peer.headers["Authorization"]
    try:
        return _run(schema, time_cap)
    finally:
        if peer:
            with _PEERS_LOCK:
                _PEERS.pop(owner.headers["Authorization"], None)


def _run(schema: BaseSchema, time_cap: float) -> FuzzReport:
    report = FuzzReport()
    seen: set[tuple[Any, ...]] = set()
    started = time.monotonic()
    stream = from_schema(schema).execute()
    timer = threading.Timer(time_cap, stream.stop)
    timer.start()
    phase_started = started
    try:
        for event in stream:
            if isinstance(event, events.PhaseStarted):
                phase_started = time.monotonic()
            elif isinstance(event, events.PhaseFinished):
                name = event.phase.name.value
                spent = time.monotonic() - phase_started
                report.phase_seconds[name] = report.phase_seconds.get(name, 0.0) + spent
            elif isinstance(event, events.ScenarioFinished):
                report.operations.add(event.recorder.label)
                _collect(event.recorder, report, seen)
            elif isinstance(event, events.NonFatalError):
                report.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
            elif isinstance(event, events.FatalError):
                report.errors.append(repr(event.exception))
            elif isinstance(event, events.EngineFinished):
                report.stopped_early = event.stop_reason is not StopReason.COMPLETED
                report.errors += [f"after the run: {failure}" for failure in event.failures]
    finally:
        timer.cancel()
    report.seconds = time.monotonic() - started
    return report


def _collect(recorder: ScenarioRecorder, report: FuzzReport, seen: set[tuple[Any, ...]]) -> None:
    report.requests += len(recorder.interactions)
    for case_id, nodes in recorder.checks.items():
        for node in nodes:
            report.checks_run.add(node.name)
            info = node.failure_info
            if info is None:
                continue
            operation = info.failure.operation or recorder.label
            interaction = recorder.interactions.get(info.failure.case_id or case_id)
            answer = interaction.response if interaction is not None else None
            status = answer.status_code if answer is not None else None
            body = answer.content.decode("utf-8", "replace") if answer is not None else ""
            if node.name == "positive_data_acceptance" and _only_server_rules(
                operation, status, body
            ):
                report.expected_rejections += 1
                continue
            if _error_code(body) in EXPECTED_FAILURES.get(node.name, set()):
                continue
            key = (node.name, operation, info.failure.title, status, _error_message(body))
            if key in seen:
                continue
            seen.add(key)
            report.failures.append(
                FuzzFailure(
                    check=node.name,
                    operation=operation,
                    title=info.failure.title,
                    message=info.failure.message,
                    reproduce=info.code_sample,
                    status=status,
                    body=body,
                )
            )


def _only_server_rules(operation: str, status: int | None, body: str) -> bool:
    """Whether the answer is a 422 whose `details` name only SERVER_RULES of `operation`."""
    rules = SERVER_RULES.get(operation, [])
    try:
        details = json.loads(body).get("details")
    except (ValueError, AttributeError):
        return False
    if status != 422 or not rules or not isinstance(details, list) or not details:
        return False
    return all(
        isinstance(detail, dict)
        and any(
            tuple(detail.get("loc", ())) == loc and fragment in str(detail.get("msg", ""))
            for loc, fragment in rules
        )
        for detail in details
    )


def _error_code(body: str) -> str | None:
    """The contract error body's `code`; else None."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, str) else None


def _error_message(body: str) -> str | None:
    """The contract error body's `message`, which names the field at fault; else None."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    message = parsed.get("message") if isinstance(parsed, dict) else None
    return message if isinstance(message, str) else None
