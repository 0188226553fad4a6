"""Read JSON Schema (as found in an OpenAPI 3.1 spec) for humans: types, rules, examples."""

import json
from typing import Any

from backend.app.schemas.common import DEFAULT_PAGE_LIMIT

Json = dict[str, Any]

REF_PREFIX = "#/components/schemas/"
EXAMPLE_BY_FORMAT = {
    "date-time": "2026-01-05T09:30:00Z",
    "date": "2026-01-05",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
CONSTRAINT_LABELS = {
    "minLength": "min length {}",
    "maxLength": "max length {}",
    "minimum": ">= {}",
    "maximum": "<= {}",
    "exclusiveMinimum": "> {}",
    "exclusiveMaximum": "< {}",
    "minItems": "min items {}",
    "maxItems": "max items {}",
    "pattern": "pattern `{}`",
}


def resolve(spec: Json, schema: Json) -> Json:
    """Return the component a `$ref` schema points at, or `schema` itself."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    resolved: Json = spec["components"]["schemas"][str(ref).removeprefix(REF_PREFIX)]
    return resolved


def variants(schema: Json) -> list[Json]:
    """Return the non-null alternatives of an `anyOf`/`oneOf` schema, or `[schema]`."""
    options: list[Json] = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return [option for option in options if option.get("type") != "null"] or options


def nullable(schema: Json) -> bool:
    """Return whether `null` is one of the alternatives of `schema`."""
    return any(v.get("type") == "null" for v in schema.get("anyOf") or schema.get("oneOf") or [])


def link(name: str) -> str:
    """Return a Markdown link to the heading of schema `name` (GitHub anchor rules)."""
    return f"[{name}](#{name.lower()})"


def type_of(schema: Json) -> str:
    """Return a short Markdown type of `schema`: `string (email)`, `array of [Lead](#lead)`."""
    names = []
    for variant in variants(schema):
        if "$ref" in variant:
            names.append(link(str(variant["$ref"]).removeprefix(REF_PREFIX)))
        elif variant.get("type") == "array":
            names.append(f"array of {type_of(variant.get('items', {}))}")
        elif "const" in variant:
            names.append(f"`{json.dumps(variant['const'])}`")
        else:
            kind = str(variant.get("type", "any"))
            names.append(f"{kind} ({variant['format']})" if "format" in variant else kind)
    return " or ".join(names)


def constraints(schema: Json) -> str:
    """Return the validation rules of `schema` as text: lengths, ranges, enum, default."""
    found = []
    for variant in [schema, *variants(schema)]:
        for key, label in CONSTRAINT_LABELS.items():
            if key in variant:
                found.append(label.format(variant[key]))
        if "enum" in variant:
            found.append("one of " + ", ".join(f"`{v}`" for v in variant["enum"]))
    if "default" in schema:
        found.append(f"default `{json.dumps(schema['default'])}`")
    return ", ".join(dict.fromkeys(found))


def example_of(spec: Json, schema: Json, depth: int = 0) -> Any:
    """Return an example value of `schema`: its own `examples`, else one built from its parts."""
    if depth > 8:
        return None
    if schema.get("examples"):
        return schema["examples"][0]
    if "$ref" in schema:
        return example_of(spec, resolve(spec, schema), depth + 1)
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    options = variants(schema)
    if options[0] is not schema:
        return example_of(spec, options[0], depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props: Json = schema.get("properties", {})
        example = {key: example_of(spec, prop, depth + 1) for key, prop in props.items()}
        if is_page(spec, schema):
            example.update(total=1, limit=DEFAULT_PAGE_LIMIT, offset=0)
        return example
    if kind == "array":
        return [example_of(spec, schema.get("items", {}), depth + 1)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "string":
        return EXAMPLE_BY_FORMAT.get(str(schema.get("format")), "string")
    return None


def is_page(spec: Json, schema: Json | None) -> bool:
    """Return whether `schema` is a list page (`items`, `total`, `limit`, `offset`)."""
    if schema is None:
        return False
    props = resolve(spec, schema).get("properties", {})
    return {"items", "total", "limit", "offset"} <= set(props)


def json_block(value: Any) -> str:
    """Return `value` as a fenced, indented JSON code block."""
    return "```json\n" + json.dumps(value, indent=2, ensure_ascii=False) + "\n```"


def cell(text: str) -> str:
    """Return `text` safe for one Markdown table cell (pipes escaped, one line)."""
    return " ".join(text.replace("|", "\\|").split())
