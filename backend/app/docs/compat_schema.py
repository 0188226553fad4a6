"""Compare two JSON Schemas (as OpenAPI 3.1 writes them) the way a client would notice.

Which way a schema may move depends on who writes the value:

- `REQUEST` (the client writes, the server validates): the new schema must accept every value
  the old one accepted. Narrowing breaks: `null` or a type no longer accepted, a removed enum
  value, a tighter length, range or item count, a new or changed `pattern`, `format` or
  `multipleOf`, a removed field, a field that became required, unknown fields newly refused,
  a changed default (a client that omits the field gets another behaviour).
- `RESPONSE` (the server writes, the client reads): the new schema must only produce values
  the old one could. Widening breaks: a field that may now be missing, `null` or of another
  type, a new enum value (a generated client's enum or union type rejects a value it was not
  built with), a looser bound, a dropped `pattern` or `format`, and a removed field.

`compare(walk, old, new)` appends what it finds to `walk.found`; `compat.py` walks the
operations and calls it for each parameter, request body and response body.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
Direction = Literal["request", "response"]
REQUEST: Direction = "request"
RESPONSE: Direction = "response"
Bound = tuple[float, bool]  # (value, exclusive)

# (name in messages, keyword of the upper bound and its exclusive form, then the lower's)
BOUNDS = (
    ("length", "maxLength", None, "minLength", None),
    ("value", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
    ("item count", "maxItems", None, "minItems", None),
    ("property count", "maxProperties", None, "minProperties", None),
)
RULES = ("pattern", "format", "multipleOf")
COUNTS = ("minLength", "minItems", "minProperties")  # 0 is no bound at all
HINT_FORMATS = ("password",)  # tells a UI to mask the input; validates nothing


@dataclass(frozen=True)
class Break:
    """One change that breaks a client of the old document.

    `kind` is a stable identifier (`field-removed`, `bound-narrowed`, ...) for tests and
    tools; `str(b)` is the report line `METHOD /path: where: what`.
    """

    operation: str
    where: str
    what: str
    kind: str

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where else ""
        return f"{self.operation}: {place}{self.what}"


@dataclass
class Walk:
    """One comparison of a parameter's, request body's or response body's schema."""

    old_spec: Json
    new_spec: Json
    operation: str
    label: str
    direction: Direction
    found: list[Break]
    expanding: set[tuple[str, str]] = field(default_factory=set)

    def add(self, path: str, kind: str, what: str) -> None:
        """Record a break at `path` (a field path such as `items[].name`, or "")."""
        where = f"{self.label}: {path}" if path and path[0] != "[" else self.label + path
        self.found.append(Break(self.operation, where, what, kind))


@dataclass(frozen=True)
class Variant:
    """One alternative of a schema (`anyOf` member), of a single JSON type."""

    kind: str  # string, integer, number, boolean, array, object, null or any
    schema: Json
    ref: str | None  # the component it was read from, if any

    @property
    def label(self) -> str:
        """Return how messages name this alternative: its component or its type."""
        return self.ref or self.kind


def deref(spec: Json, node: Json) -> Json:
    """Return `node` with `$ref` followed (keywords beside the `$ref` win)."""
    for _ in range(32):  # a chain of plain references; a cycle stops here
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        node = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
    return node


def compare(walk: Walk, old: Json, new: Json, path: str = "") -> None:
    """Compare the schemas `old` and `new` found at `path`, recording every break."""
    if walk.direction == REQUEST and "default" in old and old.get("default") != new.get("default"):
        now = _dump(new["default"]) if "default" in new else "none"
        walk.add(path, "default-changed", f"default {_dump(old['default'])} -> {now}")
    old_variants = variants(walk.old_spec, old)
    new_variants = variants(walk.new_spec, new)
    if not _compare_any(walk, path, old_variants, new_variants):
        return
    pairs, old_only, new_only = _pair(old_variants, new_variants)
    for before, after in pairs:
        _compare_variant(walk, path, before, after)
    if walk.direction == REQUEST:
        for variant in old_only:
            _lost_type(walk, path, variant)
    else:
        for variant in new_only:
            _gained_type(walk, path, variant)


def variants(spec: Json, schema: Json, ref: str | None = None) -> list[Variant]:
    """Split `schema` into its alternatives, one per JSON type (`$ref`s followed)."""
    if isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = deref(spec, schema)
        return [Variant("any", target, name)] if "$ref" in target else variants(spec, target, name)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return [variant for option in options for variant in variants(spec, option)]
    if schema.get("allOf"):
        return variants(spec, _merge_all_of(spec, schema), ref)
    return [Variant(kind, schema, ref) for kind in _types(schema)]


def _merge_all_of(spec: Json, schema: Json) -> Json:
    merged = {key: value for key, value in schema.items() if key != "allOf"}
    for part in schema["allOf"]:
        for key, value in deref(spec, part).items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _types(schema: Json) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [str(kind) for kind in declared]
    values = _enum(schema)
    if values is not None:
        return list(dict.fromkeys(_json_type(value) for value in values))
    if "properties" in schema or "additionalProperties" in schema:
        return ["object"]
    return ["array"] if "items" in schema else ["any"]


def _enum(schema: Json) -> list[Any] | None:
    if "enum" in schema:
        return list(schema["enum"])
    return [schema["const"]] if "const" in schema else None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "any")


def _dump(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _compare_any(walk: Walk, path: str, old: list[Variant], new: list[Variant]) -> bool:
    """Handle a schema that accepts any value; return whether the types still need a look."""
    old_any = any(v.kind == "any" for v in old)
    new_any = any(v.kind == "any" for v in new)
    if walk.direction == REQUEST:
        if old_any and not new_any:
            accepted = " or ".join(v.label for v in new)
            walk.add(path, "type-narrowed", f"accepted any value, now only {accepted}")
        return not new_any and not old_any
    if new_any and not old_any:
        walk.add(path, "type-widened", "may now be any value")
    return not old_any and not new_any


def _pair(
    old: list[Variant], new: list[Variant]
) -> tuple[list[tuple[Variant, Variant]], list[Variant], list[Variant]]:
    """Match alternatives by type, then by component name where a type repeats.

    An integer matches a number (the direction decides whether that narrows or widens).
    """
    pairs: list[tuple[Variant, Variant]] = []
    old_left, new_left = list(old), list(new)

    def match(same: Callable[[Variant, Variant], bool]) -> None:
        for before in list(old_left):
            after = next((candidate for candidate in new_left if same(before, candidate)), None)
            if after is not None:
                pairs.append((before, after))
                old_left.remove(before)
                new_left.remove(after)

    match(lambda a, b: a.kind == b.kind and a.ref == b.ref)
    match(lambda a, b: a.kind == b.kind and _only(old_left, a.kind) and _only(new_left, b.kind))
    match(lambda a, b: {a.kind, b.kind} == {"integer", "number"})
    return pairs, old_left, new_left


def _only(found: list[Variant], kind: str) -> bool:
    return sum(v.kind == kind for v in found) == 1


def _lost_type(walk: Walk, path: str, variant: Variant) -> None:
    if variant.kind == "null":
        walk.add(path, "null-refused", "no longer accepts null")
    else:
        walk.add(path, "type-narrowed", f"no longer accepts {variant.label}")


def _gained_type(walk: Walk, path: str, variant: Variant) -> None:
    if variant.kind == "null":
        walk.add(path, "nullable", "may now be null")
    else:
        walk.add(path, "type-widened", f"may now be {variant.label}")


def _compare_variant(walk: Walk, path: str, old: Variant, new: Variant) -> None:
    if old.kind != new.kind:  # integer <-> number
        if walk.direction == REQUEST and new.kind == "integer":
            walk.add(path, "type-narrowed", "no longer accepts a non-integer number")
        if walk.direction == RESPONSE and new.kind == "number":
            walk.add(path, "type-widened", "may now be a non-integer number")
    _compare_enum(walk, path, old, new)
    _compare_bounds(walk, path, old, new)
    _compare_rules(walk, path, old.schema, new.schema)
    if old.kind not in ("array", "object"):
        return
    # Only components can refer to themselves; an inline schema has no ref and no cycle.
    key = (old.ref or f"inline {id(old.schema)}", new.ref or f"inline {id(new.schema)}")
    if key in walk.expanding:
        return  # a recursive schema: this pair is already being compared further up
    walk.expanding.add(key)
    if old.kind == "array":
        _compare_array(walk, path, old.schema, new.schema)
    else:
        _compare_object(walk, path, old.schema, new.schema)
    walk.expanding.remove(key)


def _values(variant: Variant) -> set[str] | None:
    """Return the enum values (JSON text) this alternative allows, or None if unrestricted."""
    values = _enum(variant.schema)
    if values is None:
        return None
    kinds = {"integer", "number"} if variant.kind == "number" else {variant.kind}
    return {_dump(value) for value in values if _json_type(value) in kinds}


def _compare_enum(walk: Walk, path: str, old: Variant, new: Variant) -> None:
    before, after = _values(old), _values(new)
    if walk.direction == REQUEST and after is not None:
        if before is None:
            walk.add(path, "enum-narrowed", f"now limited to {', '.join(sorted(after))}")
        elif lost := before - after:
            walk.add(path, "enum-narrowed", f"no longer accepts {', '.join(sorted(lost))}")
    if walk.direction == RESPONSE and before is not None:
        if after is None:
            walk.add(path, "enum-widened", f"no longer limited to {', '.join(sorted(before))}")
        elif gained := after - before:
            walk.add(path, "enum-widened", f"may now be {', '.join(sorted(gained))}")


def _bound(schema: Json, key: str, exclusive_key: str | None, *, integer: bool) -> Bound | None:
    """Return the tightest bound `schema` sets with `key` or `exclusive_key`, or None."""
    found: list[Bound] = []
    if isinstance(schema.get(key), int | float) and not (key in COUNTS and schema[key] <= 0):
        found.append((schema[key], False))
    exclusive = schema.get(exclusive_key) if exclusive_key else None
    if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):
        upper = key.startswith("max")
        if integer and float(exclusive).is_integer():  # < 100 is <= 99 for an integer
            found.append((exclusive - 1 if upper else exclusive + 1, False))
        else:
            found.append((exclusive, True))
    if not found:
        return None
    if key.startswith("max"):
        return min(found, key=lambda b: (b[0], not b[1]))
    return max(found, key=lambda b: (b[0], b[1]))


def _tighter(wide: Bound | None, narrow: Bound | None, *, upper: bool) -> bool:
    """Return whether bound `narrow` refuses a value that bound `wide` allows."""
    if narrow is None:
        return False
    if wide is None:
        return True
    if upper:
        return (narrow[0], not narrow[1]) < (wide[0], not wide[1])
    return (narrow[0], narrow[1]) > (wide[0], wide[1])


def _bound_text(bound: Bound | None, *, upper: bool) -> str:
    if bound is None:
        return "unbounded"
    value = int(bound[0]) if float(bound[0]).is_integer() else bound[0]
    if upper:
        return f"below {value}" if bound[1] else f"at most {value}"
    return f"above {value}" if bound[1] else f"at least {value}"


def _compare_bounds(walk: Walk, path: str, old: Variant, new: Variant) -> None:
    integer = new.kind == "integer"
    for name, upper_key, upper_exclusive, lower_key, lower_exclusive in BOUNDS:
        for key, exclusive_key in ((upper_key, upper_exclusive), (lower_key, lower_exclusive)):
            upper = key.startswith("max")
            before = _bound(old.schema, key, exclusive_key, integer=integer)
            after = _bound(new.schema, key, exclusive_key, integer=integer)
            change = (
                f"{name} was {_bound_text(before, upper=upper)}, "
                f"now {_bound_text(after, upper=upper)}"
            )
            if walk.direction == REQUEST and _tighter(before, after, upper=upper):
                walk.add(path, "bound-narrowed", change)
            if walk.direction == RESPONSE and _tighter(after, before, upper=upper):
                walk.add(path, "bound-widened", change)


def _compare_rules(walk: Walk, path: str, old: Json, new: Json) -> None:
    for rule in RULES:
        before, after = old.get(rule), new.get(rule)
        if rule == "format":
            before, after = (f if f not in HINT_FORMATS else None for f in (before, after))
        if before == after:
            continue
        if before is None:
            change = f"{rule} {_dump(after)} added"
        elif after is None:
            change = f"{rule} {_dump(before)} removed"
        else:
            change = f"{rule} changed from {_dump(before)} to {_dump(after)}"
        if walk.direction == REQUEST and after is not None:
            walk.add(path, "rule-narrowed", change)
        if walk.direction == RESPONSE and before is not None:
            walk.add(path, "rule-widened", change)
    unique_before, unique_after = bool(old.get("uniqueItems")), bool(new.get("uniqueItems"))
    if walk.direction == REQUEST and unique_after and not unique_before:
        walk.add(path, "rule-narrowed", "items must now be unique")
    if walk.direction == RESPONSE and unique_before and not unique_after:
        walk.add(path, "rule-widened", "items may now repeat")


def _compare_array(walk: Walk, path: str, old: Json, new: Json) -> None:
    old_items, new_items = old.get("items", {}), new.get("items", {})
    if isinstance(old_items, dict) and isinstance(new_items, dict):
        compare(walk, old_items, new_items, f"{path}[]")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _compare_object(walk: Walk, path: str, old: Json, new: Json) -> None:
    old_fields: Json = old.get("properties", {})
    new_fields: Json = new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name, schema in old_fields.items():
        at = _join(path, name)
        if name not in new_fields:
            walk.add(at, "field-removed", "field removed")
            continue
        if walk.direction == REQUEST and name in new_required - old_required:
            walk.add(at, "field-required", "now required")
        if walk.direction == RESPONSE and name in old_required - new_required:
            walk.add(at, "field-optional", "may now be missing")
        compare(walk, schema, new_fields[name], at)
    if walk.direction == REQUEST:
        for name in sorted(new_required - set(old_fields)):
            walk.add(_join(path, name), "field-required", "new required field")
    old_extra = old.get("additionalProperties", True)
    new_extra = new.get("additionalProperties", True)
    if walk.direction == REQUEST and old_extra is not False and new_extra is False:
        walk.add(path, "extra-refused", "unknown fields are now refused")
    if isinstance(old_extra, dict) and isinstance(new_extra, dict):
        compare(walk, old_extra, new_extra, _join(path, "*"))
