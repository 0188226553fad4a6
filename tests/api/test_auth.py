"""Contract, "Auth": register, log in, rate limits, the current user, bearer tokens."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from backend.app.core.security import JWT_ALGORITHM, create_access_token
from tests.assertions import assert_error, error_locations
from tests.conftest import client_for, make_settings, running_app
from tests.factories import PASSWORD, make_admin, make_lead, make_member, unique_email

USER_KEYS = {"id", "email", "full_name", "role", "is_active", "created_at"}


async def register(client, email, password=PASSWORD, **fields):
    return await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, **fields}
    )


async def request_token(client, email, password=PASSWORD):
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


async def test_register_answers_201_with_exactly_the_user_fields(client):
    response = await register(client, "ada@example.com", full_name="Ada Lovelace")
    assert response.status_code == 201
    user = response.json()
    assert set(user) == USER_KEYS
    assert user["email"] == "ada@example.com"
    assert user["full_name"] == "Ada Lovelace"
    assert user["role"] == "member"
    assert user["is_active"] is True
    assert isinstance(user["id"], int)


async def test_register_without_full_name_gives_null(client):
    response = await register(client, "grace@example.com")
    assert response.status_code == 201
    assert response.json()["full_name"] is None


async def test_register_never_returns_the_password_or_its_hash(client):
    response = await register(client, "ada@example.com")
    assert PASSWORD not in response.text
    assert "argon2" not in response.text
    assert "password" not in response.text


@pytest.mark.parametrize("length", [8, 128])
async def test_a_password_of_8_to_128_characters_is_accepted(client, length):
    response = await register(client, unique_email(), password="p" * length)
    assert response.status_code == 201


@pytest.mark.parametrize("length", [0, 7, 129])
async def test_a_password_outside_8_to_128_characters_is_422(client, length):
    response = await register(client, unique_email(), password="p" * length)
    assert error_locations(response) == [["body", "password"]]


async def test_register_refuses_unknown_fields(client):
    response = await register(client, unique_email(), role="admin")
    assert error_locations(response) == [["body", "role"]]


async def test_a_taken_email_is_409_email_taken_whatever_its_case(client):
    await register(client, "ada@example.com")
    response = await register(client, "ADA@Example.COM")
    assert_error(response, 409, "email_taken")


async def test_registration_closed_is_403(database_url, client):
    settings = make_settings(database_url, registration_open=False)
    async with running_app(settings) as app, client_for(app) as http:
        response = await register(http, unique_email())
    assert_error(response, 403, "registration_closed")


async def test_token_answers_200_with_a_bearer_token_and_its_lifetime(client):
    await register(client, "ada@example.com")
    response = await request_token(client, "ada@example.com")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 60 * 60
    assert body["access_token"]


async def test_token_is_an_oauth2_form_not_json(client):
    await register(client, "ada@example.com")
    response = await client.post(
        "/api/v1/auth/token", json={"username": "ada@example.com", "password": PASSWORD}
    )
    body = assert_error(response, 415, "unsupported_media_type")
    assert "application/x-www-form-urlencoded" in body["message"]


async def test_a_token_form_without_its_fields_is_422(client):
    response = await client.post("/api/v1/auth/token", data={"username": "ada@example.com"})
    assert error_locations(response) == [["body", "password"]]


async def test_a_wrong_email_and_a_wrong_password_get_the_same_401(client):
    await register(client, "ada@example.com")
    wrong_email = await request_token(client, "nobody@example.com")
    wrong_password = await request_token(client, "ada@example.com", "not the password")
    first = assert_error(wrong_email, 401, "invalid_credentials")
    second = assert_error(wrong_password, 401, "invalid_credentials")
    assert first["message"] == second["message"]
    assert wrong_email.headers["www-authenticate"] == "Bearer"
    assert wrong_password.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("registered", "typed"),
    [("ada@example.com", "ADA@EXAMPLE.COM"), ("Grace@Example.com", "grace@example.com")],
)
async def test_login_matches_emails_case_insensitively(client, registered, typed):
    await register(client, registered)
    response = await request_token(client, typed)
    assert response.status_code == 200


async def test_the_11th_failed_login_for_one_email_in_a_minute_is_429(app, client):
    await register(client, "ada@example.com")
    for attempt in range(10):  # a different address each time: only the email is counted
        async with client_for(app, client_ip=f"10.0.0.{attempt + 1}") as http:
            response = await request_token(http, "ada@example.com", "wrong password")
        assert response.status_code == 401
    async with client_for(app, client_ip="10.0.0.99") as http:
        response = await request_token(http, "ada@example.com")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_the_11th_failed_login_from_one_address_in_a_minute_is_429(app, client):
    await register(client, "ada@example.com")
    async with client_for(app, client_ip="10.0.1.1") as http:
        for _ in range(10):
            response = await request_token(http, unique_email(), "wrong password")
            assert response.status_code == 401
        response = await request_token(http, "ada@example.com")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_ten_failed_logins_do_not_block_the_right_password(client):
    await register(client, "ada@example.com")
    for _ in range(9):
        await request_token(client, "ada@example.com", "wrong password")
    response = await request_token(client, "ada@example.com")
    assert response.status_code == 200


async def test_users_me_answers_the_current_user(client):
    registered = (await register(client, "ada@example.com", full_name="Ada")).json()
    token = (await request_token(client, "ada@example.com")).json()["access_token"]
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == registered


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic YWRhOnB3", "bearer"],
    ids=["none", "empty", "garbage", "basic", "scheme-only"],
)
async def test_a_missing_or_bad_token_is_401(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/api/v1/users/me", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_signed_with_another_key_is_401(client):
    member = await make_member(client)
    forged = jwt.encode(
        {"sub": str(member.id), "iat": datetime.now(UTC), "exp": datetime.now(UTC) + timedelta(1)},
        "another-secret-key-of-at-least-32-chars",
        algorithm=JWT_ALGORITHM,
    )
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
    assert_error(response, 401, "unauthorized")


async def test_an_expired_token_is_401(app, client):
    member = await make_member(client)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    expired = jwt.encode(
        {
            "sub": str(member.id),
            "iat": an_hour_ago,
            "exp": an_hour_ago + timedelta(minutes=1),
            "type": "access",
        },
        app.state.settings.secret_key.get_secret_value(),
        algorithm=JWT_ALGORITHM,
    )
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {expired}"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_valid_token_of_a_user_that_does_not_exist_is_401(app, client):
    token, _ = create_access_token(987654, app.state.settings)
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "unauthorized")


async def test_a_deactivated_user_cannot_log_in(app, client):
    admin = await make_admin(app, client)
    member = await make_member(client)
    await client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=admin.headers
    )
    response = await request_token(client, member.email)
    assert_error(response, 401, "invalid_credentials")


# example:lead start
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/leads"),
        ("GET", "/api/v1/leads/{lead_id}"),  # user and lead read in one statement
        ("PATCH", "/api/v1/leads/{lead_id}"),
        ("DELETE", "/api/v1/leads/{lead_id}"),
        ("GET", "/api/v1/leads/{lead_id}/messages"),
    ],
)
async def test_a_deactivated_users_token_is_refused_at_once_on_every_kind_of_route(
    app, client, method, path
):
    admin = await make_admin(app, client)
    member = await make_member(client)
    lead = await make_lead(client, member)
    url = path.format(lead_id=lead["id"])
    assert (await client.request(method, url, headers=member.headers, json={})).status_code < 400
    await client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=admin.headers
    )
    response = await client.request(method, url, headers=member.headers, json={})
    assert_error(response, 401, "unauthorized")


# example:lead end
