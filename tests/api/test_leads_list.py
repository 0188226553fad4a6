"""Contract, "Leads": the list page, its bounds, filters, search and stable sorting."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.assertions import error_locations
from tests.factories import insert_leads, make_admin, make_lead, make_member

SORTS = ["created_at", "-created_at", "updated_at", "-updated_at", "name", "-name"]


async def list_leads(client, user, **params):
    response = await client.get("/api/v1/leads", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


def names(page):
    return [lead["name"] for lead in page["items"]]


async def test_the_page_has_items_total_limit_and_offset_with_defaults(client):
    member = await make_member(client)
    lead = await make_lead(client, member)
    page = await list_leads(client, member)
    assert page == {"items": [lead], "total": 1, "limit": 50, "offset": 0}


async def test_limit_and_offset_select_the_page_and_total_counts_all(client):
    member = await make_member(client)
    for name in ["a", "b", "c", "d", "e"]:
        await make_lead(client, member, name=name)
    page = await list_leads(client, member, limit=2, offset=1, sort="name")
    assert names(page) == ["b", "c"]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)


async def test_an_offset_past_the_end_is_an_empty_page(client):
    member = await make_member(client)
    await make_lead(client, member)
    page = await list_leads(client, member, offset=5)
    assert (page["items"], page["total"], page["offset"]) == ([], 1, 5)


@pytest.mark.parametrize("limit", [1, 100])
async def test_a_limit_of_1_to_100_is_accepted(client, limit):
    member = await make_member(client)
    page = await list_leads(client, member, limit=limit)
    assert page["limit"] == limit


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", 0),
        ("limit", 101),
        ("limit", -1),
        ("limit", "ten"),
        ("limit", "true"),
        ("limit", "1.5"),
        ("offset", -1),
        ("offset", "x"),
        ("sort", "email"),
        ("sort", "--name"),
    ],
)
async def test_an_out_of_range_or_malformed_query_value_is_422(client, param, value):
    member = await make_member(client)
    response = await client.get("/api/v1/leads", params={param: value}, headers=member.headers)
    assert error_locations(response) == [["query", param]]


async def test_status_filters_by_any_of_the_repeated_values(client):
    member = await make_member(client)
    for status in ["new", "contacted", "qualified", "won", "lost"]:
        await make_lead(client, member, name=status, status=status)
    page = await list_leads(client, member, status=["new", "won"], sort="name")
    assert names(page) == ["new", "won"]
    assert page["total"] == 2


async def test_an_unknown_status_filter_is_422(client):
    member = await make_member(client)
    response = await client.get(
        "/api/v1/leads", params={"status": ["new", "open"]}, headers=member.headers
    )
    assert error_locations(response) == [["query", "status", 1]]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("grace", ["Grace Hopper"]),
        ("HOPPER", ["Grace Hopper"]),
        ("ADA@EXAMPLE", ["Ada Lovelace"]),
        ("5550100", ["Grace Hopper"]),
        ("+1415", ["Grace Hopper"]),
        ("nobody", []),
    ],
)
async def test_q_is_a_case_insensitive_substring_of_name_email_or_phone(client, q, expected):
    member = await make_member(client)
    await make_lead(client, member, name="Grace Hopper", phone="+1 (415) 555-0100")
    await make_lead(client, member, name="Ada Lovelace", email="ada@example.com")
    page = await list_leads(client, member, q=q)
    assert names(page) == expected
    assert page["total"] == len(expected)


@pytest.mark.parametrize(("q", "expected"), [("émile", ["Émile Zola"]), ("ZOLA", ["Émile Zola"])])
async def test_q_folds_case_beyond_ascii(client, q, expected):
    member = await make_member(client)
    await make_lead(client, member, name="Émile Zola")
    await make_lead(client, member, name="Emile Other")
    assert names(await list_leads(client, member, q=q)) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("%", ["100% sure"]),
        ("0%", ["100% sure"]),
        ("_", ["a_b"]),
        ("A_B", ["a_b"]),
        ("\\", ["back\\slash"]),
    ],
)
async def test_percent_underscore_and_backslash_in_q_match_themselves(client, q, expected):
    member = await make_member(client)
    for name in ["100% sure", "100 sure", "a_b", "axb", "back\\slash", "backslash"]:
        await make_lead(client, member, name=name)
    page = await list_leads(client, member, q=q)
    assert names(page) == expected


async def test_the_default_order_is_newest_first(client):
    member = await make_member(client)
    for name in ["first", "second", "third"]:
        await make_lead(client, member, name=name)
    assert names(await list_leads(client, member)) == ["third", "second", "first"]


@pytest.mark.parametrize("sort", SORTS)
async def test_paging_with_many_ties_returns_every_lead_once_in_order(app, client, sort):
    member = await make_member(client)
    start = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    rows = [
        {
            "name": ["bravo", "alpha", "charlie"][i % 3],
            "created_at": start + timedelta(minutes=i % 4),
            "updated_at": start + timedelta(hours=i % 2),
        }
        for i in range(23)
    ]
    ids = await insert_leads(app, member, rows)
    key = sort.lstrip("-")
    expected = sorted(
        zip(ids, rows, strict=True),
        key=lambda pair: (pair[1][key], pair[0]),
        reverse=sort.startswith("-"),
    )
    seen: list[int] = []
    for offset in range(0, 23, 4):
        page = await list_leads(client, member, sort=sort, limit=4, offset=offset)
        assert page["total"] == 23
        seen += [lead["id"] for lead in page["items"]]
    assert seen == [lead_id for lead_id, _ in expected]


async def test_a_member_lists_only_their_own_leads(client):
    owner = await make_member(client)
    other = await make_member(client)
    await make_lead(client, owner, name="mine")
    await make_lead(client, other, name="theirs")
    page = await list_leads(client, owner)
    assert (names(page), page["total"]) == (["mine"], 1)


async def test_an_admin_lists_every_members_leads(app, client):
    admin = await make_admin(app, client)
    first = await make_member(client)
    second = await make_member(client)
    await make_lead(client, first, name="first")
    await make_lead(client, second, name="second")
    page = await list_leads(client, admin, sort="name")
    assert (names(page), page["total"]) == (["first", "second"], 2)
