"""`compat.breaking_changes` on synthetic pairs: each kind of break is found, additions are not.

BASE is a small API written the way FastAPI and pydantic write OpenAPI 3.1 (`anyOf` with
`null` for optional values, `$ref` to components, enums as components shared by requests
and responses). Each case changes one thing in a copy and states what the report says.
"""

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from backend.app.docs.compat import breaking_changes, report

Json = dict[str, Any]
REF = "#/components/schemas/"
ITEM = "/api/v1/widgets/{widget_id}"
LIST = "/api/v1/widgets"


def ref(name: str) -> Json:
    return {"$ref": REF + name}


def nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


def json_body(schema: Json, description: str = "Successful Response") -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = json_body(ref("ErrorResponse"), "`not_found`: Widget 1 was not found.")
BEARER = [{"OAuth2PasswordBearer": []}]

BASE: Json = {
    "openapi": "3.1.0",
    "info": {"title": "Widgets", "version": "1.0.0"},
    "paths": {
        LIST: {
            "get": {
                "operationId": "list_widgets",
                "security": BEARER,
                "parameters": [
                    {
                        "name": "color",
                        "in": "query",
                        "required": False,
                        "schema": nullable({"type": "array", "items": ref("Color")}),
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                    },
                ],
                "responses": {"200": json_body(ref("WidgetPage")), "422": ERROR},
            },
            "post": {
                "operationId": "create_widget",
                "security": BEARER,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": nullable({"type": "string", "maxLength": 255}),
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("WidgetCreate")}},
                },
                "responses": {
                    "201": {
                        **json_body(ref("WidgetRead")),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    "409": ERROR,
                    "422": ERROR,
                },
            },
        },
        ITEM: {
            "get": {
                "operationId": "get_widget",
                "parameters": [
                    {
                        "name": "widget_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {"200": json_body(ref("WidgetRead")), "404": ERROR},
            },
            "delete": {
                "operationId": "delete_widget",
                "security": BEARER,
                "parameters": [
                    {
                        "name": "widget_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {"204": {"description": "Successful Response"}, "404": ERROR},
            },
        },
    },
    "components": {
        "schemas": {
            "Color": {"type": "string", "enum": ["red", "green"], "title": "Color"},
            "Size": {"type": "string", "enum": ["s", "m"], "title": "Size"},
            "WidgetCreate": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^\\S"},
                    "color": {**ref("Color"), "default": "red"},
                    "note": nullable({"type": "string", "minLength": 0, "maxLength": 500}),
                    "count": {"type": "integer", "minimum": 0, "maximum": 1000},
                    "weight": {"type": "number", "exclusiveMinimum": 0},
                    "price": {"type": "number", "minimum": 0, "maximum": 1000},
                    "tags": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": 20},
                        "maxItems": 5,
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "password": {"type": "string", "writeOnly": True},
                },
            },
            "WidgetRead": {
                "type": "object",
                "required": ["id", "name", "color", "size", "note", "category", "created_at"],
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "color": ref("Color"),
                    "size": ref("Size"),
                    "note": nullable({"type": "string"}),
                    "count": {"type": "integer"},
                    "category": ref("Category"),
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
            "Category": {
                "type": "object",
                "required": ["name", "children"],
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": ref("Category")},
                },
            },
            "WidgetPage": {
                "type": "object",
                "required": ["items", "total", "limit", "offset"],
                "properties": {
                    "items": {"type": "array", "items": ref("WidgetRead")},
                    "total": {"type": "integer"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "offset": {"type": "integer"},
                },
            },
            "ErrorResponse": {
                "type": "object",
                "required": ["code", "message", "details", "request_id"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": nullable({"type": "array", "items": {"type": "object"}}),
                    "request_id": {"type": "string"},
                },
            },
        }
    },
}


def schemas(spec: Json) -> Json:
    return spec["components"]["schemas"]


def create_fields(spec: Json) -> Json:
    return schemas(spec)["WidgetCreate"]["properties"]


def read_fields(spec: Json) -> Json:
    return schemas(spec)["WidgetRead"]["properties"]


def parameter(spec: Json, path: str, method: str, name: str) -> Json:
    found: Json = next(p for p in spec["paths"][path][method]["parameters"] if p["name"] == name)
    return found


def changed(mutate: Callable[[Json], object]) -> Json:
    new = copy.deepcopy(BASE)
    mutate(new)
    return new


# (what changes, how, the kind every break has, one line the report must hold)
BREAKS: list[tuple[str, Callable[[Json], object], str, str]] = [
    (
        "path removed",
        lambda s: s["paths"].pop(ITEM),
        "path-removed",
        f"GET {ITEM}: path removed",
    ),
    (
        "operation removed",
        lambda s: s["paths"][ITEM].pop("delete"),
        "operation-removed",
        f"DELETE {ITEM}: operation removed",
    ),
    (
        "operationId renamed",
        lambda s: s["paths"][ITEM]["get"].update(operationId="read_widget"),
        "operation-renamed",
        f"GET {ITEM}: operationId get_widget -> read_widget",
    ),
    (
        "a public operation needs a token",
        lambda s: s["paths"][ITEM]["get"].update(security=BEARER),
        "auth-added",
        f"GET {ITEM}: now requires authentication",
    ),
    (
        "query parameter removed",
        lambda s: s["paths"][LIST]["get"]["parameters"].pop(0),
        "parameter-removed",
        f"GET {LIST}: query parameter color: removed",
    ),
    (
        "new required query parameter",
        lambda s: s["paths"][LIST]["get"]["parameters"].append(
            {"name": "shop", "in": "query", "required": True, "schema": {"type": "string"}}
        ),
        "parameter-required",
        f"GET {LIST}: query parameter shop: new required parameter",
    ),
    (
        "header parameter became required",
        lambda s: parameter(s, LIST, "post", "Idempotency-Key").update(required=True),
        "parameter-required",
        f"POST {LIST}: header parameter Idempotency-Key: now required",
    ),
    (
        "integer range narrowed",
        lambda s: parameter(s, LIST, "get", "limit")["schema"].update(maximum=50),
        "bound-narrowed",
        f"GET {LIST}: query parameter limit: value was at most 100, now at most 50",
    ),
    (
        "inclusive minimum made exclusive",
        lambda s: (
            create_fields(s)["count"].update(exclusiveMinimum=0)
            or create_fields(s)["count"].pop("minimum")
        ),
        "bound-narrowed",
        f"POST {LIST}: request body: count: value was at least 0, now at least 1",
    ),
    (
        "a number's minimum made exclusive",
        lambda s: (
            create_fields(s)["price"].update(exclusiveMinimum=0)
            or create_fields(s)["price"].pop("minimum")
        ),
        "bound-narrowed",
        f"POST {LIST}: request body: price: value was at least 0, now above 0",
    ),
    (
        "a number's maximum made exclusive",
        lambda s: (
            create_fields(s)["price"].update(exclusiveMaximum=1000)
            or create_fields(s)["price"].pop("maximum")
        ),
        "bound-narrowed",
        f"POST {LIST}: request body: price: value was at most 1000, now below 1000",
    ),
    (
        "default changed",
        lambda s: parameter(s, LIST, "get", "limit")["schema"].update(default=20),
        "default-changed",
        f"GET {LIST}: query parameter limit: default 50 -> 20",
    ),
    (
        "request maxLength lowered",
        lambda s: create_fields(s)["name"].update(maxLength=100),
        "bound-narrowed",
        f"POST {LIST}: request body: name: length was at most 200, now at most 100",
    ),
    (
        "request minLength raised on a nullable field",
        lambda s: create_fields(s)["note"]["anyOf"][0].update(minLength=1),
        "bound-narrowed",
        f"POST {LIST}: request body: note: length was unbounded, now at least 1",
    ),
    (
        "request pattern added",
        lambda s: create_fields(s)["note"]["anyOf"][0].update(pattern="^[a-z]*$"),
        "rule-narrowed",
        f'POST {LIST}: request body: note: pattern "^[a-z]*$" added',
    ),
    (
        "request pattern changed",
        lambda s: create_fields(s)["name"].update(pattern="^[A-Z]"),
        "rule-narrowed",
        f'POST {LIST}: request body: name: pattern changed from "^\\\\S" to "^[A-Z]"',
    ),
    (
        "request format added",
        lambda s: create_fields(s)["name"].update(format="email"),
        "rule-narrowed",
        f'POST {LIST}: request body: name: format "email" added',
    ),
    (
        "request field no longer accepts null",
        lambda s: create_fields(s).update(note={"type": "string", "maxLength": 500}),
        "null-refused",
        f"POST {LIST}: request body: note: no longer accepts null",
    ),
    (
        "new required request field",
        lambda s: (
            create_fields(s).update(sku={"type": "string"}),
            schemas(s)["WidgetCreate"]["required"].append("sku"),
        ),
        "field-required",
        f"POST {LIST}: request body: sku: new required field",
    ),
    (
        "optional request field became required",
        lambda s: schemas(s)["WidgetCreate"]["required"].append("note"),
        "field-required",
        f"POST {LIST}: request body: note: now required",
    ),
    (
        "request field removed (unknown fields are refused)",
        lambda s: create_fields(s).pop("count"),
        "field-removed",
        f"POST {LIST}: request body: count: field removed",
    ),
    (
        "request enum value removed",
        lambda s: schemas(s)["Color"].update(enum=["red"]),
        "enum-narrowed",
        f'POST {LIST}: request body: color: no longer accepts "green"',
    ),
    (
        "request enum value removed, in a repeatable query parameter",
        lambda s: schemas(s)["Color"].update(enum=["red"]),
        "enum-narrowed",
        f'GET {LIST}: query parameter color[]: no longer accepts "green"',
    ),
    (
        "request type changed",
        lambda s: create_fields(s).update(count={"type": "string"}),
        "type-narrowed",
        f"POST {LIST}: request body: count: no longer accepts integer",
    ),
    (
        "request number made integer",
        lambda s: create_fields(s)["weight"].update(type="integer"),
        "type-narrowed",
        f"POST {LIST}: request body: weight: no longer accepts a non-integer number",
    ),
    (
        "request array maxItems lowered",
        lambda s: create_fields(s)["tags"].update(maxItems=3),
        "bound-narrowed",
        f"POST {LIST}: request body: tags: item count was at most 5, now at most 3",
    ),
    (
        "request array item narrowed",
        lambda s: create_fields(s)["tags"]["items"].update(maxLength=10),
        "bound-narrowed",
        f"POST {LIST}: request body: tags[]: length was at most 20, now at most 10",
    ),
    (
        "request map value narrowed",
        lambda s: create_fields(s)["labels"]["additionalProperties"].update(maxLength=10),
        "bound-narrowed",
        f"POST {LIST}: request body: labels.*: length was unbounded, now at most 10",
    ),
    (
        "request object refuses unknown keys",
        lambda s: create_fields(s)["labels"].update(additionalProperties=False),
        "extra-refused",
        f"POST {LIST}: request body: labels: unknown fields are now refused",
    ),
    (
        "request body removed",
        lambda s: s["paths"][LIST]["post"].pop("requestBody"),
        "body-removed",
        f"POST {LIST}: request body: no longer accepted",
    ),
    (
        "request media type removed",
        lambda s: s["paths"][LIST]["post"]["requestBody"].update(
            content={"application/x-www-form-urlencoded": {"schema": ref("WidgetCreate")}}
        ),
        "media-type-removed",
        f"POST {LIST}: request body: application/json removed",
    ),
    (
        "a request body is now required",
        lambda s: s["paths"][ITEM]["delete"].update(
            requestBody={"required": True, "content": {"application/json": {"schema": {}}}}
        ),
        "body-required",
        f"DELETE {ITEM}: request body: now required",
    ),
    (
        "response field removed",
        lambda s: read_fields(s).pop("count"),
        "field-removed",
        f"GET {LIST}: 200 response: items[].count: field removed",
    ),
    (
        "response field became optional",
        lambda s: schemas(s)["WidgetRead"]["required"].remove("note"),
        "field-optional",
        f"GET {ITEM}: 200 response: note: may now be missing",
    ),
    (
        "response field became nullable",
        lambda s: read_fields(s).update(name=nullable({"type": "string"})),
        "nullable",
        f"POST {LIST}: 201 response: name: may now be null",
    ),
    (
        "response enum value added (shared with requests, where adding is fine)",
        lambda s: schemas(s)["Color"]["enum"].append("blue"),
        "enum-widened",
        f'GET {ITEM}: 200 response: color: may now be "blue"',
    ),
    (
        "response integer may be a float",
        lambda s: read_fields(s)["id"].update(type="number"),
        "type-widened",
        f"GET {ITEM}: 200 response: id: may now be a non-integer number",
    ),
    (
        "response field may hold any value",
        lambda s: read_fields(s).update(count={}),
        "type-widened",
        f"GET {ITEM}: 200 response: count: may now be any value",
    ),
    (
        "response format dropped",
        lambda s: read_fields(s)["created_at"].pop("format"),
        "rule-widened",
        f'GET {ITEM}: 200 response: created_at: format "date-time" removed',
    ),
    (
        "response bound widened",
        lambda s: schemas(s)["WidgetPage"]["properties"]["limit"].update(maximum=1000),
        "bound-widened",
        f"GET {LIST}: 200 response: limit: value was at most 100, now at most 1000",
    ),
    (
        "a field removed deep in a recursive schema",
        lambda s: (
            schemas(s)["Category"]["properties"].pop("name"),
            schemas(s)["Category"]["required"].remove("name"),
        ),
        "field-removed",
        f"GET {ITEM}: 200 response: category.name: field removed",
    ),
    (
        "success status changed",
        lambda s: s["paths"][LIST]["post"]["responses"].update(
            {"200": s["paths"][LIST]["post"]["responses"].pop("201")}
        ),
        "status-changed",
        f"POST {LIST}: success status 201 -> 200",
    ),
    (
        "success status removed",
        lambda s: s["paths"][ITEM]["delete"]["responses"].pop("204"),
        "status-removed",
        f"DELETE {ITEM}: 204 response: success status removed",
    ),
    (
        "success status added",
        lambda s: s["paths"][LIST]["post"]["responses"].update(
            {"200": json_body(ref("WidgetRead"))}
        ),
        "status-added",
        f"POST {LIST}: 200 response: new success status",
    ),
    (
        "response header removed",
        lambda s: s["paths"][LIST]["post"]["responses"]["201"].pop("headers"),
        "header-removed",
        f"POST {LIST}: 201 response: header Location removed",
    ),
    (
        "response media type removed",
        lambda s: s["paths"][ITEM]["get"]["responses"]["200"].update(
            content={"text/csv": {"schema": {"type": "string"}}}
        ),
        "media-type-removed",
        f"GET {ITEM}: 200 response: application/json removed",
    ),
    (
        "response body removed",
        lambda s: s["paths"][ITEM]["get"]["responses"]["200"].pop("content"),
        "body-removed",
        f"GET {ITEM}: 200 response: no longer has a body",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "kind", "line"), [case[1:] for case in BREAKS], ids=[case[0] for case in BREAKS]
)
def test_each_kind_of_break_is_reported(
    mutate: Callable[[Json], object], kind: str, line: str
) -> None:
    breaks = breaking_changes(BASE, changed(mutate))

    assert line in report(breaks).splitlines(), report(breaks)
    assert {b.kind for b in breaks} == {kind}, report(breaks)


def renamed_component(spec: Json) -> None:
    """Rename WidgetRead to Widget everywhere: the wire format does not change."""
    renamed = json.loads(json.dumps(spec).replace("WidgetRead", "Widget"))
    spec.clear()
    spec.update(renamed)


# What may change within a version: additions, wider requests, narrower responses.
COMPATIBLE: list[tuple[str, Callable[[Json], object]]] = [
    ("new path", lambda s: s["paths"].update({"/api/v1/gadgets": s["paths"][LIST]})),
    ("new operation", lambda s: s["paths"][ITEM].update(put=s["paths"][ITEM]["get"])),
    (
        "new optional query parameter",
        lambda s: s["paths"][LIST]["get"]["parameters"].append(
            {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}
        ),
    ),
    ("new optional request field", lambda s: create_fields(s).update(sku={"type": "string"})),
    ("new response field", lambda s: read_fields(s).update(sku={"type": "string"})),
    ("request maxLength raised", lambda s: create_fields(s)["name"].update(maxLength=300)),
    ("request minLength lowered", lambda s: create_fields(s)["name"].update(minLength=0)),
    ("request minLength 0 spelled out", lambda s: create_fields(s)["tags"].update(minItems=0)),
    (
        "request exclusive minimum made inclusive",
        lambda s: (
            create_fields(s)["weight"].update(minimum=0)
            or create_fields(s)["weight"].pop("exclusiveMinimum")
        ),
    ),
    ("request pattern removed", lambda s: create_fields(s)["name"].pop("pattern")),
    ("request field made optional", lambda s: schemas(s)["WidgetCreate"]["required"].clear()),
    (
        "request accepts null too",
        lambda s: create_fields(s).update(name=nullable({"type": "string"})),
    ),
    (
        "request integer widened to number",
        lambda s: create_fields(s)["count"].update(type="number"),
    ),
    (
        "request accepts unknown keys",
        lambda s: schemas(s)["WidgetCreate"].pop("additionalProperties"),
    ),
    (
        "request format hint for a UI",
        lambda s: create_fields(s)["password"].update(format="password"),
    ),
    (
        "response bound narrowed",
        lambda s: schemas(s)["WidgetPage"]["properties"]["limit"].update(maximum=50),
    ),
    ("response enum value removed", lambda s: schemas(s)["Size"].update(enum=["s"])),
    (
        "response field now always present",
        lambda s: schemas(s)["WidgetRead"]["required"].append("count"),
    ),
    ("response field no longer nullable", lambda s: read_fields(s).update(note={"type": "string"})),
    ("error status added", lambda s: s["paths"][ITEM]["get"]["responses"].update({"500": ERROR})),
    ("error status removed", lambda s: s["paths"][LIST]["post"]["responses"].pop("409")),
    ("a protected operation made public", lambda s: s["paths"][LIST]["get"].pop("security")),
    (
        "path parameter renamed",
        lambda s: s["paths"].update(
            {
                "/api/v1/widgets/{id}": {
                    method: {**op, "parameters": [{**op["parameters"][0], "name": "id"}]}
                    for method, op in s["paths"].pop(ITEM).items()
                }
            }
        ),
    ),
    (
        "header parameter spelled in another case",
        lambda s: parameter(s, LIST, "post", "Idempotency-Key").update(name="idempotency-key"),
    ),
    (
        "descriptions, titles, summaries and examples",
        lambda s: (
            s["paths"][ITEM]["get"].update(summary="Read one", description="Reads one widget."),
            schemas(s)["WidgetRead"].update(title="Widget", examples=[{"id": 1}]),
            create_fields(s)["name"].update(description="What to call it."),
        ),
    ),
    ("a component renamed", renamed_component),
    ("the version number", lambda s: s["info"].update(version="1.1.0")),
]


@pytest.mark.parametrize("mutate", [c[1] for c in COMPATIBLE], ids=[c[0] for c in COMPATIBLE])
def test_compatible_changes_are_not_reported(mutate: Callable[[Json], object]) -> None:
    new = changed(mutate)

    assert new != BASE, "the case should change the document"
    assert report(breaking_changes(BASE, new)) == ""


def test_an_unchanged_document_has_no_breaks() -> None:
    assert breaking_changes(BASE, copy.deepcopy(BASE)) == []


def test_a_shared_enum_breaks_requests_when_shrunk_and_responses_when_grown() -> None:
    shrunk = breaking_changes(BASE, changed(lambda s: schemas(s)["Color"].update(enum=["red"])))
    grown = breaking_changes(
        BASE, changed(lambda s: schemas(s)["Color"].update(enum=["red", "green", "blue"]))
    )

    assert {b.where.split(":")[0] for b in shrunk} == {"request body", "query parameter color[]"}
    assert {b.where for b in grown} == {
        "200 response: color",
        "201 response: color",
        "200 response: items[].color",
    }


def test_each_operation_that_returns_a_changed_schema_is_named() -> None:
    breaks = breaking_changes(BASE, changed(lambda s: read_fields(s).pop("name")))

    assert report(breaks).splitlines() == [
        f"GET {LIST}: 200 response: items[].name: field removed",
        f"POST {LIST}: 201 response: name: field removed",
        f"GET {ITEM}: 200 response: name: field removed",
    ]
