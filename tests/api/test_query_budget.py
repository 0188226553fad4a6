"""SQL statements per request: a list costs the same at any page size, and stays in budget.

Every list endpoint is found in the app's OpenAPI (a GET with `limit` and `offset`), so a
new entity's list is measured the moment its router is registered. Each is filled with a
full page of rows by posting its create operation's documented example (its `POST` on the
same path; a list without one needs a seeder in `SEEDERS`), with parent records for path
parameters made the same way (`/leads/{lead_id}/messages` posts a lead to `/leads` first).
Then `limit=1` and `limit=100` must issue the same number of statements (no query per row),
at most the list's budget.

The budgets are the counts measured when this test was written, the user lookup of the
bearer token included (a route on one record reads the user in the same statement as the
record, `core/access.py`). Lower one when a shared building block gets cheaper; a rise means a
query per request was added, which is a defect unless it buys something worth saying.
"""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.app.crud import users as crud_users
from backend.app.docs.generate import build_openapi
from backend.app.docs.schema_text import example_of, resolve
from backend.app.models import AuditEvent
from backend.app.schemas.common import MAX_PAGE_LIMIT
from tests.entities import create, registered_plans, url_of
from tests.factories import AuthedUser, make_admin, make_member, unique_email
from tests.querycount import QueryLog

Json = dict[str, Any]
SPEC = build_openapi()
# example:lead start
LEADS = "/api/v1/leads"
# example:lead end
PATH_PARAMETER = re.compile(r"/\{([^}]+)\}")


def is_list(operation: Json | None) -> bool:
    """Return whether `operation` pages with `limit` and `offset`."""
    query = {p["name"] for p in (operation or {}).get("parameters", []) if p["in"] == "query"}
    return {"limit", "offset"} <= query


LIST_PATHS = [path for path, item in SPEC["paths"].items() if is_list(item.get("get"))]

# Statements per list request today, on SQLite and PostgreSQL alike.
LIST_BUDGET = {
    "/api/v1/users": 3,
    "/api/v1/audit-events": 3,
    # example:lead start
    "/api/v1/leads": 3,
    "/api/v1/leads/{lead_id}/messages": 3,
    "/api/v1/leads/{lead_id}/payments": 3,
    # example:lead end
}
# A list not named above (a new entity's) may cost what the dearest list costs today.
DEFAULT_LIST_BUDGET = max(LIST_BUDGET.values())
# example:lead start
# Statements per request on one lead, as its owner. Each write includes the one INSERT of
# its audit rows (core/audit.py), made once per transaction however many rows it holds. A
# lead with a phone reads whether the number opted out (kept per number) after its insert;
# a delete removes the lead, checks for payments and deletes its texts (about it by table
# and id, not by a cascading foreign key, read first so the audit trail records them).
LEAD_BUDGET = {"create": 4, "read": 1, "update": 3, "delete": 6}
# example:lead end


async def seed_users(app: FastAPI, count: int) -> None:
    """Insert `count` members straight into the database (no one logs in as them)."""
    async with app.state.session_factory.begin() as session:
        for _ in range(count):
            await crud_users.create_user(
                session, email=unique_email("seed"), hashed_password="not-a-hash"
            )


async def seed_audit_events(app: FastAPI, count: int) -> None:
    """Insert `count` audit events straight into the table (no route writes one)."""
    async with app.state.session_factory.begin() as session:
        session.add_all(
            AuditEvent(actor="system", action="update", entity_type="lead", entity_id=n)
            for n in range(1, count + 1)
        )


SEEDERS = {"/api/v1/users": seed_users, "/api/v1/audit-events": seed_audit_events}


def example_body(template: str) -> Json:
    """Return the documented example of the JSON body `POST template` takes."""
    content = SPEC["paths"][template]["post"]["requestBody"]["content"]
    body: Json = example_of(SPEC, resolve(SPEC, content["application/json"]["schema"]))
    return body


async def post_example(
    client: httpx.AsyncClient, template: str, path: str, user: AuthedUser
) -> Json:
    """Create one record by posting the documented example to `path`; return its JSON."""
    response = await client.post(path, json=example_body(template), headers=user.headers)
    assert response.status_code == 201, f"POST {path}: {response.text}"
    created: Json = response.json()
    return created


async def concrete_path(client: httpx.AsyncClient, template: str, user: AuthedUser) -> str:
    """Fill each `{parameter}` of `template` with the id of a parent record made for it."""
    path = template
    for match in PATH_PARAMETER.finditer(template):
        parent = path[: path.index(match[0])]
        created = await post_example(client, template[: match.start()], parent, user)
        path = path.replace(match[0], f"/{created['id']}", 1)
    return path


async def fill(
    app: FastAPI, client: httpx.AsyncClient, template: str, path: str, user: AuthedUser
) -> None:
    """Add a full page of rows to the list at `path`."""
    if template in SEEDERS:
        await SEEDERS[template](app, MAX_PAGE_LIMIT)
        return
    plans = [plan for plan in registered_plans() if url_of(plan) == template]
    if plans:  # a generated entity: distinct bodies, so unique fields do not clash
        for n in range(MAX_PAGE_LIMIT):
            await create(client, plans[0], user, n)
        return
    assert "post" in SPEC["paths"][template], (
        f"GET {template} lists records no operation on its path creates: add a seeder for "
        f"it to SEEDERS in {__name__}"
    )
    for _ in range(MAX_PAGE_LIMIT):
        await post_example(client, template, path, user)


async def measured(
    app: FastAPI, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, QueryLog]:
    """Send one request; return its response and the statements it ran."""
    async with QueryLog(app.state.engine) as log:
        response = await client.request(method, url, **kwargs)
    return response, log


def test_the_list_endpoints_are_found_and_every_budget_names_one() -> None:
    assert "/api/v1/users" in LIST_PATHS
    assert set(LIST_BUDGET) <= set(LIST_PATHS), "a budget for a list that no longer exists"


@pytest.mark.parametrize("template", LIST_PATHS)
async def test_a_list_costs_the_same_statements_at_any_page_size(
    app: FastAPI, client: httpx.AsyncClient, template: str
) -> None:
    admin = await make_admin(app, client)  # sees every record, may call every list
    path = await concrete_path(client, template, admin)
    await fill(app, client, template, path, admin)

    logs: dict[int, QueryLog] = {}
    for limit in (1, MAX_PAGE_LIMIT):
        response, logs[limit] = await measured(
            app, client, "GET", path, params={"limit": limit}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == limit

    small, full = logs[1], logs[MAX_PAGE_LIMIT]
    assert len(small) == len(full), (
        f"GET {template}: {len(small)} statements for 1 row, {len(full)} for "
        f"{MAX_PAGE_LIMIT}:\n{full.report()}"
    )
    budget = LIST_BUDGET.get(template, DEFAULT_LIST_BUDGET)
    assert len(full) <= budget, f"GET {template}: budget {budget}:\n{full.report()}"


# example:lead start
async def test_one_lead_is_created_read_updated_and_deleted_within_budget(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner = await make_member(client)
    auth = {"headers": owner.headers}

    created, create_log = await measured(
        app, client, "POST", LEADS, json=example_body(LEADS), **auth
    )
    assert created.status_code == 201, created.text
    lead = f"{LEADS}/{created.json()['id']}"
    read, read_log = await measured(app, client, "GET", lead, **auth)
    updated, update_log = await measured(
        app, client, "PATCH", lead, json={"status": "contacted"}, **auth
    )
    deleted, delete_log = await measured(app, client, "DELETE", lead, **auth)
    assert (read.status_code, updated.status_code, deleted.status_code) == (200, 200, 204)

    logs = {"create": create_log, "read": read_log, "update": update_log, "delete": delete_log}
    over = {
        step: f"{len(log)} > {LEAD_BUDGET[step]}:\n{log.report()}"
        for step, log in logs.items()
        if len(log) > LEAD_BUDGET[step]
    }
    assert not over, "\n".join(f"{step}: {text}" for step, text in over.items())


# example:lead end
