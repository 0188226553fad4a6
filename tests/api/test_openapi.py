"""The published API description: OpenAPI 3.1, operation ids, error docs, auth, examples.

The route checks iterate `app.routes`, so a route added later is checked without a new test.
"""

import re
from collections import Counter

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from tests.assertions import assert_error

API_PREFIX = "/api/v1"
PUBLIC_API_PATHS = {"/api/v1/auth/register", "/api/v1/auth/token"}
WEBHOOK_PREFIX = "/api/v1/webhooks/"
ERROR_REF = "#/components/schemas/ErrorResponse"
BODY_ERRORS = {
    "400": "bad_request",
    "413": "payload_too_large",
    "415": "unsupported_media_type",
    "422": "validation_error",
}


def api_routes(app):
    """Every documented route of the app, as (route, method) pairs.

    `iter_route_contexts` sees each route as mounted: with its router's prefix and
    dependencies (FastAPI keeps included routers as lazy entries of `app.routes`).
    """
    return [
        (route, method)
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and route.include_in_schema
        for method in sorted(route.methods)
    ]


def is_public(path):
    return path in PUBLIC_API_PATHS or path.startswith(WEBHOOK_PREFIX)


def protected_routes(app):
    return [
        (route, method)
        for route, method in api_routes(app)
        if route.path_format.startswith(API_PREFIX) and not is_public(route.path_format)
    ]


def operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def resolve(spec, schema):
    """Follow a `$ref` to the component schema it names."""
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def with_ids(path):
    """A concrete URL for a path template: every `{param}` becomes 1."""
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture
async def spec(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


async def test_the_description_is_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1.")


async def test_every_business_route_lives_under_api_v1(app):
    outside = {
        route.path_format
        for route, _ in api_routes(app)
        if not route.path_format.startswith(API_PREFIX)
    }
    assert outside == {"/health", "/health/ready"}


async def test_operation_ids_are_unique(spec):
    counts = Counter(operation["operationId"] for _, _, operation in operations(spec))
    assert [name for name, count in counts.items() if count > 1] == []


async def test_every_operation_id_is_its_handlers_name(app, spec):
    for route, method in api_routes(app):
        operation = spec["paths"][route.path_format][method.lower()]
        assert operation["operationId"] == route.endpoint.__name__, route.path_format


async def test_every_error_response_documents_the_error_schema(spec):
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)


async def test_fastapis_own_validation_error_schema_is_never_documented(spec):
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "ValidationError" not in spec["components"]["schemas"]


async def test_every_operation_with_a_body_documents_the_errors_of_any_body(spec):
    # Unparseable (invalid UTF-8, a broken multipart form), too large, the wrong media type,
    # invalid: any body can be each of these, so every operation that reads one says so.
    with_body = [(p, m, op) for p, m, op in operations(spec) if "requestBody" in op]
    assert len(with_body) >= 4
    for path, method, operation in with_body:
        for status, code in BODY_ERRORS.items():
            response = operation["responses"].get(status)
            assert response, (method, path, status)
            assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}
            assert f"`{code}`" in response["description"], (method, path, status)


async def test_a_wrong_method_is_405_allowing_exactly_the_documented_methods(client, spec):
    def methods_at(url):
        """The methods of every documented path whose template matches `url`."""
        return {
            method.upper()
            for path, methods in spec["paths"].items()
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[0-9]+", path), url)  # every id is an integer
            for method in methods
        }

    for path in spec["paths"]:
        url = with_ids(path)  # /users/me is not /users/{user_id}: that takes integers only
        allowed = methods_at(url)
        unused = next(m for m in ("PUT", "PATCH", "DELETE", "POST") if m not in allowed)
        response = await client.request(unused, url)
        assert_error(response, 405, "method_not_allowed")
        assert sorted(response.headers["allow"].split(", ")) == sorted(allowed), path


async def test_every_api_operation_documents_a_500(spec):
    for path, method, operation in operations(spec):
        if path.startswith(API_PREFIX):
            assert "500" in operation["responses"], (method, path)


@pytest.mark.parametrize(
    ("operation_id", "status", "code"),
    [
        ("register", "403", "registration_closed"),
        ("register", "409", "email_taken"),
        ("register", "422", "validation_error"),
        ("login", "401", "invalid_credentials"),
        ("login", "429", "rate_limited"),
        ("read_current_user", "401", "unauthorized"),
        ("list_users", "403", "forbidden"),
        ("update_user", "404", "not_found"),
        ("update_user", "409", "cannot_modify_self"),
        ("update_user", "413", "payload_too_large"),
        ("update_user", "415", "unsupported_media_type"),
        # example:lead start
        ("create_lead", "413", "payload_too_large"),
        ("create_lead", "415", "unsupported_media_type"),
        ("read_lead", "404", "not_found"),
        # example:lead end
        ("health_ready", "503", "service_unavailable"),
    ],
)
async def test_each_error_code_is_documented_on_the_operation_returning_it(
    spec, operation_id, status, code
):
    [operation] = [op for _, _, op in operations(spec) if op["operationId"] == operation_id]
    assert f"`{code}`" in operation["responses"][status]["description"]


async def test_protected_operations_declare_the_bearer_scheme_and_public_ones_do_not(spec):
    for path, method, operation in operations(spec):
        if not path.startswith(API_PREFIX):
            continue
        expected = None if is_public(path) else [{"OAuth2PasswordBearer": []}]
        assert operation.get("security") == expected, (method, path)


async def test_the_public_api_routes_are_exactly_the_allowlist(app):
    public = {
        route.path_format
        for route, _ in api_routes(app)
        if route.path_format.startswith(API_PREFIX)
    }
    public -= {route.path_format for route, _ in protected_routes(app)}
    assert {path for path in public if not path.startswith(WEBHOOK_PREFIX)} == PUBLIC_API_PATHS


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"], ids=["none", "bad"])
async def test_every_protected_route_answers_401_without_a_valid_token(app, client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    routes = protected_routes(app)
    assert len(routes) >= 4
    for route, method in routes:
        response = await client.request(method, with_ids(route.path_format), headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_every_operation_has_exactly_one_tag(spec):
    for path, method, operation in operations(spec):
        assert len(operation.get("tags", [])) == 1, (method, path)


@pytest.mark.parametrize(
    ("operation_id", "tag"),
    [
        ("register", "auth"),
        ("login", "auth"),
        ("read_current_user", "users"),
        ("list_users", "users"),
        ("update_user", "users"),
        # example:lead start
        ("create_lead", "leads"),
        ("list_leads", "leads"),
        ("read_lead", "leads"),
        ("update_lead", "leads"),
        ("delete_lead", "leads"),
        # example:lead end
        ("health", "health"),
    ],
)
async def test_operations_are_tagged_by_entity(spec, operation_id, tag):
    [operation] = [op for _, _, op in operations(spec) if op["operationId"] == operation_id]
    assert operation["tags"] == [tag]


async def test_every_json_request_body_refuses_unknown_fields(spec):
    for path, method, operation in operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            schema = resolve(spec, content["application/json"]["schema"])
            assert schema.get("additionalProperties") is False, (method, path)


async def test_every_json_request_body_schema_has_an_example(spec):
    # Form bodies (the OAuth2 token request) are generated by FastAPI and are not checked.
    for path, method, operation in operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            schema = resolve(spec, content["application/json"]["schema"])
            assert schema.get("examples"), (method, path)


async def test_every_json_response_schema_has_an_example(spec):
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if "application/json" in content:
                schema = resolve(spec, content["application/json"]["schema"])
                assert schema.get("examples"), (method, path, status)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_their_scripts_and_styles_from_the_app(client, page):
    response = await client.get(page)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert served.content
