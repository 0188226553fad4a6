"""The registered entities (their specs), and valid, distinct request bodies for each.

An entity is registered by its spec in backend/app/docs/specs/; the contract tests
(tests/api/test_entity_contract.py) cover every one of them on both databases, so a new
entity is tested the moment it is generated, with no test written by hand.
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.factories import AuthedUser
from tools.generate.entity import plan_for
from tools.generate.plan import Plan, example_of
from tools.generate.spec import FieldSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "backend/app/docs/specs"

Json = dict[str, Any]


def registered_plans() -> list[Plan]:
    """The plan of every entity with a spec, in name order."""
    return [plan_for(load_spec(path), ROOT) for path in sorted(SPECS.glob("*.yaml"))]


def plan_named(entity: str) -> Plan:
    """The plan of one registered entity."""
    return plan_for(load_spec(SPECS / f"{entity}.yaml"), ROOT)


def url_of(plan: Plan) -> str:
    """The collection path of an entity."""
    return f"/api/v1{plan.names.url}"


def value_for(name: str, spec: FieldSpec, n: int) -> Any:
    """The `n`-th distinct valid value of a field (n = 0 is its documented example)."""
    if spec.type == "short_text":
        return _text(spec, n)
    if spec.type == "long_text":
        return f"{example_of(name, spec)} {n}"[: spec.max_length or 10000]
    if spec.type == "integer":
        low = int(spec.minimum) if spec.minimum is not None else 0
        high = int(spec.maximum) if spec.maximum is not None else low + 10_000
        return low + n % (high - low + 1)
    if spec.type == "decimal":
        low = Decimal(str(spec.minimum)) if spec.minimum is not None else Decimal(0)
        step = Decimal(1).scaleb(-spec.scale)
        return float(low + step * (n % 100))
    kinds = {
        "boolean": lambda: n % 2 == 1,
        "email": lambda: f"user{n}@example.com",
        "phone": lambda: f"+1415555{100 + n % 100:04d}",
        "url": lambda: f"https://example.com/page/{n}",
        "uuid": lambda: str(uuid.UUID(int=n + 1)),
        "date": lambda: (date(2026, 1, 1) + timedelta(days=n)).isoformat(),
        "datetime": lambda: (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n)).isoformat(),
        "enum": lambda: spec.values[n % len(spec.values)],
        "json": lambda: {"n": n},
    }
    return kinds[spec.type]()


def _text(spec: FieldSpec, n: int) -> str:
    base = str(spec.example) if spec.example is not None else "Item"
    if spec.pattern is None:
        value = base if n == 0 else f"{base} {n}"
        return value[-(spec.max_length or 200) :]
    letters = ""
    number = n
    while True:  # a suffix in the example's own alphabet (e.g. ALPHA, ALPHAB, ALPHAC ...)
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[number % 26] + letters
        number //= 26
        if number == 0:
            break
    return (base + letters if n else base)[: spec.max_length]


def body_for(plan: Plan, n: int, refs: dict[str, int] | None = None) -> Json:
    """The `n`-th distinct valid create body of an entity (its references in `refs`)."""
    body: Json = {}
    for name, spec in plan.input_fields.items():
        if spec.type == "reference":
            if spec.required or (refs and name in refs):
                body[name] = (refs or {})[name]
            continue
        if spec.type == "money":
            amount = int(spec.minimum or 0) + 100 + n
            body[f"{name}_amount"] = min(amount, int(spec.maximum or 99_999_999))
            body[f"{name}_currency"] = "usd"
            continue
        body[name] = value_for(name, spec, n)
    return body


async def create(
    client: httpx.AsyncClient, plan: Plan, user: AuthedUser, n: int = 0, **overrides: Any
) -> Json:
    """Create the `n`-th record of an entity (and the records it refers to) through the API."""
    refs = await references_for(client, plan, user, n)
    body = {**body_for(plan, n, refs), **overrides}
    response = await client.post(url_of(plan), json=body, headers=user.headers)
    assert response.status_code == 201, f"POST {url_of(plan)} {body}: {response.text}"
    record: Json = response.json()
    return record


async def references_for(
    client: httpx.AsyncClient, plan: Plan, user: AuthedUser, n: int
) -> dict[str, int]:
    """Create (as `user`) one record of each entity `plan` refers to; return their ids."""
    refs: dict[str, int] = {}
    for name, spec in plan.input_fields.items():
        if spec.type != "reference":
            continue
        target = plan.references[name]
        if target.entity == "user":
            refs[name] = user.id
        else:
            refs[name] = (await create(client, plan_named(target.entity), user, n))["id"]
    return refs


def comparable(value: Any) -> Any:
    """A body value as the API answers it (a decimal comes back as a string, a phone E.164)."""
    if isinstance(value, float):
        return str(Decimal(str(value)))
    return value
