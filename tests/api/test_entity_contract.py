"""The CRUD contract of every registered entity, on both databases, with no test per entity.

Driven by the entity specs (backend/app/docs/specs/*.yaml) and the routes they generate:
create answers 201 with `Location`; read, partial update and delete behave; a missing record
is 404 and another member's too; invalid bodies and unknown query parameters are 422; unique
fields answer 409, also to concurrent inserts; limits are bounded; an offset walk over tied
sort keys returns every record exactly once; each declared filter and sort works and an
undeclared one is refused. Entity-specific rules still get tests of their own.
"""

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from tests.assertions import assert_error, error_locations
from tests.entities import Json, body_for, create, registered_plans, url_of, value_for
from tests.factories import make_admin, make_member
from tools.generate.plan import Plan

PLANS = {plan.names.entity: plan for plan in registered_plans()}


@pytest.fixture(params=sorted(PLANS))
def plan(request: pytest.FixtureRequest) -> Plan:
    return PLANS[request.param]


def _needs(plan: Plan, *operations: str) -> None:
    missing = [op for op in operations if not plan.has(op)]
    if missing:
        pytest.skip(f"{plan.names.entity} does not offer {', '.join(missing)}")


def _same(sent: Any, answered: Any) -> bool:
    if isinstance(sent, float) or (isinstance(answered, str) and isinstance(sent, int)):
        try:
            return Decimal(str(sent)) == Decimal(str(answered))
        except ArithmeticError:
            return False
    return bool(sent == answered)


async def test_create_answers_201_with_the_record_and_its_location(client, plan):
    _needs(plan, "create")
    owner = await make_member(client)
    record = await create(client, plan, owner)
    sent = body_for(plan, 0, {k: record[k] for k in record if k.endswith("_id")})
    for name, value in sent.items():
        if plan.fields.get(name) and plan.fields[name].type in {"phone", "datetime"}:
            continue  # normalised: E.164, UTC
        assert _same(value, record[name]), (name, value, record[name])
    if plan.spec.owner_scoped:
        assert record["owner_id"] == owner.id
    if plan.has("read"):
        read = await client.get(f"{url_of(plan)}/{record['id']}", headers=owner.headers)
        assert read.status_code == 200
        assert read.json() == record


async def test_a_missing_or_foreign_record_is_404(client, app, plan):
    _needs(plan, "create", "read")
    owner = await make_member(client)
    record = await create(client, plan, owner)
    missing = await client.get(f"{url_of(plan)}/987654321", headers=owner.headers)
    assert_error(missing, 404, "not_found")
    if not plan.spec.owner_scoped:
        return
    other = await make_member(client)
    path = f"{url_of(plan)}/{record['id']}"
    assert_error(await client.get(path, headers=other.headers), 404, "not_found")
    if plan.has("update"):
        patched = await client.patch(path, json={}, headers=other.headers)
        assert_error(patched, 404, "not_found")
    if plan.has("delete"):
        assert_error(await client.delete(path, headers=other.headers), 404, "not_found")
    if plan.has("list"):
        theirs = await client.get(url_of(plan), headers=other.headers)
        assert record["id"] not in {item["id"] for item in theirs.json()["items"]}
        admin = await make_admin(app, client)
        everyone = await client.get(url_of(plan), params={"limit": 100}, headers=admin.headers)
        assert record["id"] in {item["id"] for item in everyone.json()["items"]}


async def test_invalid_bodies_are_422(client, plan):
    _needs(plan, "create")
    owner = await make_member(client)
    body = body_for(plan, 0, dict.fromkeys(plan.references, 1))
    unknown = await client.post(
        url_of(plan), json={**body, "no_such_field": 1}, headers=owner.headers
    )
    assert error_locations(unknown) == [["body", "no_such_field"]]
    for name, spec in plan.input_fields.items():
        if spec.type in {"short_text", "long_text", "email"}:
            wrong = await client.post(
                url_of(plan), json={**body, name: 12345}, headers=owner.headers
            )
            assert error_locations(wrong) == [["body", name]], name
        if spec.required:
            without = {k: v for k, v in body.items() if k != name}
            missing = await client.post(url_of(plan), json=without, headers=owner.headers)
            assert ["body", name] in error_locations(missing), name


async def test_unique_fields_answer_409_also_to_concurrent_inserts(client, plan):
    _needs(plan, "create")
    unique = [name for name, spec in plan.input_fields.items() if spec.unique]
    if not unique:
        pytest.skip(f"{plan.names.entity} has no unique field")
    owner = await make_member(client)
    first = await create(client, plan, owner, 0)
    refs = {name: first[name] for name in plan.references if first.get(name) is not None}
    for n, name in enumerate(unique, start=1):
        clash = {**body_for(plan, n * 10, refs), name: first[name]}
        response = await client.post(url_of(plan), json=clash, headers=owner.headers)
        assert_error(response, 409, "conflict")
    racing = body_for(plan, 500, refs)
    answers = await asyncio.gather(
        *(client.post(url_of(plan), json=racing, headers=owner.headers) for _ in range(2))
    )
    assert sorted(a.status_code for a in answers) == [201, 409]


async def test_a_partial_update_changes_only_what_it_sends(client, plan):
    _needs(plan, "create", "update")
    owner = await make_member(client)
    record = await create(client, plan, owner, 0)
    name, spec = next(
        (n, s) for n, s in plan.input_fields.items() if s.type not in {"reference", "money"}
    )
    new = value_for(name, spec, 7)
    path = f"{url_of(plan)}/{record['id']}"
    response = await client.patch(path, json={name: new}, headers=owner.headers)
    assert response.status_code == 200, response.text
    updated = response.json()
    if spec.type not in {"phone", "datetime"}:
        assert _same(new, updated[name])
    unchanged = {k: v for k, v in record.items() if k not in {name, "updated_at"}}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert updated["updated_at"] >= record["updated_at"]


async def test_delete_answers_204_then_the_record_is_gone(client, plan):
    _needs(plan, "create", "delete")
    owner = await make_member(client)
    record = await create(client, plan, owner)
    path = f"{url_of(plan)}/{record['id']}"
    deleted = await client.delete(path, headers=owner.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    if plan.has("read"):
        assert_error(await client.get(path, headers=owner.headers), 404, "not_found")
    assert_error(await client.delete(path, headers=owner.headers), 404, "not_found")


@pytest.mark.parametrize("limit", ["0", "101", "-1", "x"])
async def test_the_list_refuses_a_limit_outside_1_to_100(client, plan, limit):
    _needs(plan, "list")
    owner = await make_member(client)
    response = await client.get(url_of(plan), params={"limit": limit}, headers=owner.headers)
    assert error_locations(response) == [["query", "limit"]]


async def test_an_undeclared_filter_or_sort_is_refused(client, plan):
    _needs(plan, "list")
    owner = await make_member(client)
    unknown = await client.get(url_of(plan), params={"no_such_filter": "1"}, headers=owner.headers)
    assert error_locations(unknown) == [["query", "no_such_filter"]]
    bad_sort = await client.get(url_of(plan), params={"sort": "id_nope"}, headers=owner.headers)
    assert error_locations(bad_sort) == [["query", "sort"]]


async def _seed(client, plan: Plan, owner, count: int, **same: Any) -> list[Json]:
    records = []
    for n in range(count):
        overrides = {k: v for k, v in same.items() if not plan.fields[k].unique}
        records.append(await create(client, plan, owner, n, **overrides))
    return records


async def _walk(client, plan: Plan, owner, sort: str, limit: int = 3) -> list[int]:
    seen: list[int] = []
    offset = 0
    while True:
        page = await client.get(
            url_of(plan),
            params={"sort": sort, "limit": limit, "offset": offset},
            headers=owner.headers,
        )
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        seen += [item["id"] for item in items]
        if len(items) < limit:
            return seen
        offset += limit


async def test_an_offset_walk_over_tied_sort_keys_returns_every_record_once(client, plan):
    _needs(plan, "create", "list")
    owner = await make_member(client)
    tie = {}
    for key in plan.sorts:
        spec = plan.fields.get(key)
        if spec is not None and not spec.unique and not spec.read_only:
            tie[key] = value_for(key, spec, 0)  # every record gets the same sort value
    records = await _seed(client, plan, owner, 7, **tie)
    expected = sorted(record["id"] for record in records)
    for key in plan.sorts:
        for sort in (key, f"-{key}"):
            walked = await _walk(client, plan, owner, sort)
            assert sorted(walked) == expected, sort
            assert len(walked) == len(set(walked)), sort


async def test_each_declared_filter_selects_what_it_says(client, plan):
    _needs(plan, "create", "list")
    if not plan.filters:
        pytest.skip(f"{plan.names.entity} declares no filter")
    owner = await make_member(client)
    records = await _seed(client, plan, owner, 3)
    for name, spec in plan.filters.items():
        if spec.type == "reference":
            wanted = records[1][name]
            matches = {r["id"] for r in records if r[name] == wanted}
            assert await _ids(client, plan, owner, {name: wanted}) == matches, name
            continue
        first, second = records[0][name], records[1][name]
        if "in" in spec.filter:
            chosen = {r["id"] for r in records if r[name] in (first, second)}
            assert await _ids(client, plan, owner, {name: [first, second]}) == chosen, name
        elif "eq" in spec.filter:
            chosen = {r["id"] for r in records if r[name] == first}
            assert await _ids(client, plan, owner, {name: first}) == chosen, name
        if "range" in spec.filter:
            low = min(r[name] for r in records if r[name] is not None)
            found = await _ids(client, plan, owner, {f"{name}_from": low, f"{name}_to": low})
            assert found == {r["id"] for r in records if r[name] == low}, name
        if "contains" in spec.filter:
            needle = str(records[2][name])[-3:]
            found = await _ids(client, plan, owner, {f"{name}_contains": needle})
            assert found == {r["id"] for r in records if needle.lower() in str(r[name]).lower()}


async def _ids(client, plan: Plan, owner, params: dict[str, Any]) -> set[int]:
    response = await client.get(
        url_of(plan), params={**params, "limit": 100}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}
