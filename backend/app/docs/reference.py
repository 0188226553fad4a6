"""Render the human-readable API reference (Markdown) from an OpenAPI 3.1 spec.

Everything specific to the API comes from the spec: schemas with their constraints and
`examples`, operations grouped by tag, security, and the error codes each response's
description lists as "`code`: message" lines (see `core.errors.error_responses`). New
entities, routers and integrations show up here without any change to this module.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from backend.app.docs.schema_text import (
    REF_PREFIX,
    Json,
    cell,
    constraints,
    example_of,
    is_page,
    json_block,
    link,
    nullable,
    resolve,
    type_of,
)

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
ERROR_LINE = re.compile(r"^`([a-z0-9_]+)`: (.+)$")
REQUEST_ID_RULE = (
    "Every response carries an `X-Request-ID` header: the caller's own, when it sent one of "
    "1-128 characters from `A-Za-z0-9._-`, else a new one. An error body's `request_id` "
    "equals it; quote it when reporting a problem."
)
CONVENTIONS = (
    'JSON bodies reject unknown fields and wrongly typed values (`true` or `"5"` for an '
    "integer) with 422 `validation_error`; bodies over the size limit get 413.",
    "Timestamps are ISO 8601 in UTC with an explicit offset; one sent without an offset is a 422.",
    "Fields marked *server-set* are returned but never accepted in a request body.",
)


@dataclass(frozen=True)
class Operation:
    """One method on one path of the spec."""

    method: str
    path: str
    spec: Json

    @property
    def title(self) -> str:
        """Return `METHOD /path`."""
        return f"{self.method.upper()} {self.path}"


def operations(spec: Json) -> list[Operation]:
    """Return every operation of `spec` in the spec's own order."""
    return [
        Operation(method, path, op)
        for path, item in spec.get("paths", {}).items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


def error_codes(spec: Json) -> dict[str, tuple[int, str]]:
    """Return every error code the spec documents, with its HTTP status and message."""
    codes: dict[str, tuple[int, str]] = {}
    for op in operations(spec):
        for status, response in op.spec.get("responses", {}).items():
            for line in response.get("description", "").splitlines():
                match = ERROR_LINE.match(line.strip())
                if match and status.isdigit():
                    codes.setdefault(match[1], (int(status), match[2]))
    return dict(sorted(codes.items(), key=lambda item: (item[1][0], item[0])))


def render_reference(spec: Json, env_rows: list[tuple[str, str, str, str]]) -> str:
    """Return the whole Markdown reference for `spec`.

    Args:
        spec: The OpenAPI document, as `app.openapi()` returns it.
        env_rows: (section, name, default, comment) of each environment variable.

    Returns:
        The Markdown text, ending in a newline.
    """
    info = spec.get("info", {})
    parts = [
        f"# {info.get('title', 'API')} reference (version {info.get('version', '?')})",
        "Generated from the live OpenAPI spec by `make docs` (`python -m backend.app.docs."
        "generate`); do not edit by hand. The same spec is served at `/openapi.json` and "
        "browsable at `/docs` (Swagger UI) and `/redoc`, all without internet access.",
        "Contents: [Overview](#overview) · [Entities](#entities) · [Endpoints](#endpoints) · "
        "[Error codes](#error-codes) · [Environment variables](#environment-variables)",
        *_overview(spec),
        *_entities(spec),
        *_endpoints(spec),
        *_error_code_list(spec),
        *_environment(env_rows),
    ]
    return "\n\n".join(part.rstrip() for part in parts) + "\n"


# --- overview ---------------------------------------------------------------------------
def _overview(spec: Json) -> Iterator[str]:
    yield "## Overview"
    yield str(spec.get("info", {}).get("description", "")).strip()
    yield "### Authentication"
    yield from _auth_section(spec)
    yield "### Errors"
    yield from _errors_section(spec)
    yield "### Pagination"
    yield from _pagination_section(spec)
    yield "### Request id"
    yield REQUEST_ID_RULE
    yield "### Conventions"
    yield "\n".join(f"- {line}" for line in CONVENTIONS)


def _auth_section(spec: Json) -> Iterator[str]:
    schemes: Json = spec.get("components", {}).get("securitySchemes", {})
    for name, scheme in schemes.items():
        token_url = scheme.get("flows", {}).get("password", {}).get("tokenUrl")
        if token_url:
            login = next((op for op in operations(spec) if op.path == token_url), None)
            fields = _form_fields(spec, login) if login else ""
            yield (
                f"`{name}` (OAuth2 password flow): `POST {token_url}` with a form body "
                f"(`application/x-www-form-urlencoded`{fields}) answers an `access_token`; send "
                "it on every protected call as `Authorization: Bearer <access_token>`. In "
                "`/docs` the **Authorize** button does this for you."
            )
        elif scheme.get("type") == "http":
            yield f"`{name}`: send `Authorization: {scheme.get('scheme', '').title()} <token>`."
        elif scheme.get("type") == "apiKey":
            yield f"`{name}`: send the {scheme.get('in')} value `{scheme.get('name')}`."
    yield (
        "Each endpoint below says whether it needs a token (**Auth: bearer token**) or not "
        "(**Auth: no bearer token**; provider webhooks check their signature header "
        "instead). A missing, invalid or expired token, or one of a deactivated user, "
        "answers 401 `unauthorized` with `WWW-Authenticate: Bearer`."
    )


def _form_fields(spec: Json, op: Operation) -> str:
    content: Json = op.spec.get("requestBody", {}).get("content", {})
    media: Json = next(iter(content.values()), {})
    schema = resolve(spec, media.get("schema", {}))
    names = [f"`{name}`" for name in schema.get("required", [])]
    return f"; fields {', '.join(names)}" if names else ""


def _error_schema_name(spec: Json) -> str | None:
    for op in operations(spec):
        for status, response in op.spec.get("responses", {}).items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if status.startswith(("4", "5")) and "$ref" in schema:
                return str(schema["$ref"]).removeprefix(REF_PREFIX)
    return None


def _errors_section(spec: Json) -> Iterator[str]:
    name = _error_schema_name(spec)
    if name is None:
        yield "No error responses are documented."
        return
    schema = resolve(spec, {"$ref": REF_PREFIX + name})
    yield (
        f"Every 4xx and 5xx answer has the body {link(name)} and nothing else. Each endpoint "
        "lists the statuses it can return with the `code` each may carry; "
        "[Error codes](#error-codes) lists them all."
    )
    yield json_block(example_of(spec, schema))


def _pagination_section(spec: Json) -> Iterator[str]:
    lists = [op for op in operations(spec) if is_page(spec, _success_schema(op)[1])]
    if not lists:
        yield "No endpoint returns a page."
        return
    params = {p["name"]: p for p in lists[0].spec.get("parameters", [])}
    rules = [
        f"`{name}`: {constraints(params[name]['schema'])}"
        for name in ("limit", "offset")
        if name in params
    ]
    yield (
        'Every list endpoint answers `{"items": [...], "total", "limit", "offset"}`, where '
        "`total` counts every row matching the filters. Query parameters: "
        + "; ".join(rules)
        + ". Out of range: 422 `validation_error`. List endpoints: "
        + ", ".join(f"`{op.title}`" for op in lists)
        + "."
    )


# --- entities ---------------------------------------------------------------------------
def _entities(spec: Json) -> Iterator[str]:
    schemas: Json = spec.get("components", {}).get("schemas", {})
    yield "## Entities"
    yield (
        "Every schema of the API: request bodies (`...Create`, `...Update`), responses "
        "(`...Read`, `...Page`), enums and shared shapes. *Server-set* fields appear in "
        "responses only."
    )
    for name, schema in schemas.items():
        yield f"### {name}"
        if schema.get("description"):
            yield str(schema["description"]).strip()
        if "enum" in schema:
            yield "One of: " + ", ".join(f"`{value}`" for value in schema["enum"]) + "."
            continue
        yield _field_table(spec, name, schema)
        if schema.get("examples"):
            yield "Example:\n\n" + json_block(schema["examples"][0])


def _request_schema_names(spec: Json) -> set[str]:
    """Names of the component schemas some operation accepts as its request body."""
    names = set()
    for op in operations(spec):
        for media in op.spec.get("requestBody", {}).get("content", {}).values():
            ref = str(media.get("schema", {}).get("$ref", ""))
            if ref.startswith(REF_PREFIX):
                names.add(ref.removeprefix(REF_PREFIX))
    return names


def _server_set(spec: Json, name: str) -> set[str]:
    """Fields of `<X>Read` that no request body of entity X (`<X>Create`, ...) accepts."""
    schemas: Json = spec.get("components", {}).get("schemas", {})
    if not name.endswith("Read"):
        return set()
    entity = name.removesuffix("Read")
    inputs = [schemas[n] for n in _request_schema_names(spec) if n.startswith(entity)]
    if not inputs:
        return set()
    accepted = {field for schema in inputs for field in schema.get("properties", {})}
    return set(schemas[name].get("properties", {})) - accepted


def _field_table(spec: Json, name: str, schema: Json) -> str:
    required = set(schema.get("required", []))
    server_set = _server_set(spec, name)
    rows = ["| Field | Type | Required | Nullable | Constraints | Description |"]
    rows.append("| --- | --- | --- | --- | --- | --- |")
    for field, prop in schema.get("properties", {}).items():
        notes = [str(prop.get("description", ""))]
        if field in server_set or prop.get("readOnly"):
            notes.insert(0, "*Server-set.*")
        rows.append(
            "| "
            + " | ".join(
                cell(text)
                for text in (
                    f"`{field}`",
                    type_of(prop),
                    "yes" if field in required else "no",
                    "yes" if nullable(prop) else "no",
                    constraints(prop),
                    " ".join(note for note in notes if note),
                )
            )
            + " |"
        )
    if schema.get("additionalProperties") is False:
        rows.append("\nUnknown fields are rejected (422).")
    return "\n".join(rows)


# --- endpoints --------------------------------------------------------------------------
def _endpoints(spec: Json) -> Iterator[str]:
    yield "## Endpoints"
    by_tag: dict[str, list[Operation]] = {}
    for op in operations(spec):
        by_tag.setdefault((op.spec.get("tags") or ["other"])[0], []).append(op)
    for tag, ops in by_tag.items():
        yield f"### {tag}"
        yield "\n".join(f"- `{op.title}`: {op.spec.get('summary', '')}" for op in ops)
        for op in ops:
            yield from _endpoint(spec, op)


def _endpoint(spec: Json, op: Operation) -> Iterator[str]:
    yield f"#### {op.title}"
    text = op.spec.get("description") or op.spec.get("summary", "")
    yield str(text).split("\n\nRaises:")[0].strip()
    schemes = [name for requirement in op.spec.get("security", []) for name in requirement]
    auth = f"bearer token (`{'`, `'.join(schemes)}`)" if schemes else "no bearer token"
    yield f"**Auth:** {auth}. **Operation id:** `{op.spec.get('operationId', '')}`."
    if op.spec.get("parameters"):
        yield _parameter_table(op.spec["parameters"])
    yield "**Request example:**\n\n" + _request_example(spec, op, schemes)
    yield _response_example(spec, op)
    errors = _error_rows(op)
    if errors:
        yield "**Errors:**\n\n| Status | Code: meaning |\n| --- | --- |\n" + "\n".join(errors)


def _parameter_table(parameters: list[Json]) -> str:
    rows = ["| Parameter | In | Type | Required | Constraints | Description |"]
    rows.append("| --- | --- | --- | --- | --- | --- |")
    for param in parameters:
        schema = param.get("schema", {})
        cells = (
            f"`{param['name']}`",
            param.get("in", ""),
            type_of(schema),
            "yes" if param.get("required") else "no",
            constraints(schema),
            param.get("description", schema.get("description", "")),
        )
        rows.append("| " + " | ".join(cell(str(value)) for value in cells) + " |")
    return "\n".join(rows)


def _request_example(spec: Json, op: Operation, schemes: list[str]) -> str:
    path = op.path
    for param in op.spec.get("parameters", []):
        if param.get("in") == "path":
            value = example_of(spec, param.get("schema", {}))
            path = path.replace("{" + param["name"] + "}", str(value))
    lines = [f"{op.method.upper()} {path}"]
    if schemes:
        lines.append("Authorization: Bearer <access_token>")
    for param in op.spec.get("parameters", []):
        if param.get("in") == "header":
            lines.append(f"{param['name']}: {param.get('example', '<' + param['name'] + '>')}")
    content: Json = op.spec.get("requestBody", {}).get("content", {})
    body = ""
    for media, entry in content.items():
        lines.append(f"Content-Type: {media}")
        schema = entry.get("schema", {})
        if media == "application/x-www-form-urlencoded":
            fields = resolve(spec, schema).get("required", [])
            body = "&".join(f"{field}=<{field}>" for field in fields)
        else:
            body = json.dumps(example_of(spec, schema), indent=2, ensure_ascii=False)
        break
    text = "\n".join(lines) + (f"\n\n{body}" if body else "")
    return f"```http\n{text}\n```"


def _response_example(spec: Json, op: Operation) -> str:
    """The success status with an example body: JSON from its schema, else the media's example."""
    status, schema = _success_schema(op)
    if schema is not None:
        return f"**Response {status}** ({type_of(schema)}):\n\n" + json_block(
            example_of(spec, schema)
        )
    response: Json = op.spec.get("responses", {}).get(status, {})
    for media, entry in response.get("content", {}).items():
        if "example" in entry:
            return f"**Response {status}** (`{media}`):\n\n```\n{entry['example']}\n```"
    return f"**Response {status}:** no body."


def _success_schema(op: Operation) -> tuple[str, Json | None]:
    for status, response in op.spec.get("responses", {}).items():
        if status.startswith("2"):
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            return status, schema
    return "default", None


def _error_rows(op: Operation) -> list[str]:
    rows = []
    for status, response in sorted(op.spec.get("responses", {}).items()):
        if status.startswith(("4", "5")):
            lines = [line.strip() for line in response.get("description", "").splitlines()]
            rows.append(f"| {status} | {cell('; '.join(line for line in lines if line))} |")
    return rows


def _error_code_list(spec: Json) -> Iterator[str]:
    yield "## Error codes"
    yield "Every `code` an error body may carry, from the responses of all operations."
    rows = ["| Code | Status | Meaning |", "| --- | --- | --- |"]
    rows += [
        f"| `{code}` | {status} | {cell(msg)} |"
        for code, (status, msg) in error_codes(spec).items()
    ]
    yield "\n".join(rows)


def _environment(env_rows: list[tuple[str, str, str, str]]) -> Iterator[str]:
    yield "## Environment variables"
    yield (
        "Read from the environment (or a `.env` file) at start-up; the list and defaults come "
        "from `.env.example`. An empty default means unset."
    )
    rows = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    section = None
    for group, name, default, comment in env_rows:
        if group != section:
            section = group
            rows.append(f"| **{cell(group)}** | | |")
        rows.append(f"| `{name}` | {f'`{cell(default)}`' if default else ''} | {cell(comment)} |")
    yield "\n".join(rows)
