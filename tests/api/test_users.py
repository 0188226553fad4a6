"""Contract, "Auth": admin-only user management and the first admin."""

import pytest

from tests.assertions import assert_error, error_locations
from tests.conftest import client_for, make_settings, running_app
from tests.factories import PASSWORD, login, make_admin, make_member


async def test_an_admin_lists_every_user_oldest_first(app, client):
    admin = await make_admin(app, client)
    first = await make_member(client)
    second = await make_member(client)
    response = await client.get("/api/v1/users", headers=admin.headers)
    assert response.status_code == 200
    page = response.json()
    assert [user["id"] for user in page["items"]] == [admin.id, first.id, second.id]
    assert (page["total"], page["limit"], page["offset"]) == (3, 50, 0)


async def test_the_users_page_follows_the_limit_and_offset_of_every_list(app, client):
    admin = await make_admin(app, client)
    member = await make_member(client)
    response = await client.get(
        "/api/v1/users", params={"limit": 1, "offset": 1}, headers=admin.headers
    )
    page = response.json()
    assert [user["id"] for user in page["items"]] == [member.id]
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 1)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "ten"}])
async def test_the_users_page_refuses_an_out_of_range_limit_or_offset(app, client, params):
    admin = await make_admin(app, client)
    response = await client.get("/api/v1/users", params=params, headers=admin.headers)
    assert error_locations(response) == [["query", next(iter(params))]]


async def test_a_member_may_not_list_users(client):
    member = await make_member(client)
    response = await client.get("/api/v1/users", headers=member.headers)
    assert_error(response, 403, "forbidden")


async def test_a_member_may_not_change_a_user(client):
    member = await make_member(client)
    response = await client.patch(
        f"/api/v1/users/{member.id}", json={"role": "admin"}, headers=member.headers
    )
    assert_error(response, 403, "forbidden")


async def test_an_admin_promotes_a_member_who_then_acts_as_admin(app, client):
    admin = await make_admin(app, client)
    member = await make_member(client)
    response = await client.patch(
        f"/api/v1/users/{member.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    listing = await client.get("/api/v1/users", headers=member.headers)
    assert listing.status_code == 200


async def test_an_admin_changes_a_full_name_and_nothing_else(app, client):
    admin = await make_admin(app, client)
    member = await make_member(client)
    before = (await client.get("/api/v1/users/me", headers=member.headers)).json()
    response = await client.patch(
        f"/api/v1/users/{member.id}", json={"full_name": "  Ada King  "}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json() == {**before, "full_name": "Ada King"}


async def test_an_admin_clears_a_full_name_with_null(app, client):
    admin = await make_admin(app, client)
    member = await make_member(client)
    await client.patch(
        f"/api/v1/users/{member.id}", json={"full_name": "Ada"}, headers=admin.headers
    )
    response = await client.patch(
        f"/api/v1/users/{member.id}", json={"full_name": None}, headers=admin.headers
    )
    assert response.json()["full_name"] is None


async def test_deactivation_takes_effect_on_the_next_request(app, client):
    admin = await make_admin(app, client)
    member = await make_member(client)
    assert (await client.get("/api/v1/users/me", headers=member.headers)).status_code == 200
    response = await client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.json()["is_active"] is False
    after = await client.get("/api/v1/users/me", headers=member.headers)
    assert_error(after, 401, "unauthorized")
    assert after.headers["www-authenticate"] == "Bearer"


async def test_a_reactivated_user_may_use_their_token_again(app, client):
    admin = await make_admin(app, client)
    member = await make_member(client)
    url = f"/api/v1/users/{member.id}"
    await client.patch(url, json={"is_active": False}, headers=admin.headers)
    await client.patch(url, json={"is_active": True}, headers=admin.headers)
    response = await client.get("/api/v1/users/me", headers=member.headers)
    assert response.status_code == 200


@pytest.mark.parametrize("body", [{"role": "member"}, {"is_active": False}])
async def test_an_admin_cannot_demote_or_deactivate_themselves(app, client, body):
    admin = await make_admin(app, client)
    response = await client.patch(f"/api/v1/users/{admin.id}", json=body, headers=admin.headers)
    assert_error(response, 409, "cannot_modify_self")


async def test_changing_a_missing_user_is_404(app, client):
    admin = await make_admin(app, client)
    response = await client.patch(
        "/api/v1/users/987654", json={"full_name": "X"}, headers=admin.headers
    )
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "owner"}, "role"),
        ({"role": None}, "role"),
        ({"is_active": None}, "is_active"),
        ({"is_active": "false"}, "is_active"),
        ({"is_active": 0}, "is_active"),
        ({"full_name": 42}, "full_name"),
        ({"email": "new@example.com"}, "email"),
        ({"password": "a new password"}, "password"),
        ({"id": 5}, "id"),
        ({"created_at": "2026-01-01T00:00:00Z"}, "created_at"),
    ],
)
async def test_an_invalid_or_unknown_user_field_is_422(app, client, body, field):
    admin = await make_admin(app, client)
    member = await make_member(client)
    response = await client.patch(f"/api/v1/users/{member.id}", json=body, headers=admin.headers)
    assert error_locations(response) == [["body", field]]


async def test_the_first_admin_is_created_at_start_up_once(database_url, client):
    settings = make_settings(
        database_url, first_admin_email="Boss@Example.com", first_admin_password=PASSWORD
    )
    for _ in range(2):  # a restart finds the admin and changes nothing
        async with running_app(settings) as app, client_for(app) as http:
            token = await login(http, "boss@example.com")
            response = await http.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    page = response.json()
    assert [(user["email"], user["role"]) for user in page["items"]] == [
        ("boss@example.com", "admin")
    ]
