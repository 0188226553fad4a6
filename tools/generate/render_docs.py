"""Render `backend/app/docs/entities/<entity>.md`: the human-readable page of an entity."""

import json

from tools.generate.plan import Plan, example_of, read_example_of
from tools.generate.spec import FieldSpec


def render_docs(plan: Plan) -> str:
    """Return the Markdown page of the entity: fields, endpoints, list options, examples."""
    names = plan.names
    base = f"/api/v1{names.url}"
    lines = [
        f"# {names.cls}",
        "",
        f"{plan.spec.description} Generated from `backend/app/docs/specs/{names.entity}.yaml`"
        " (`make entity`); the full reference of every endpoint is `api.md`.",
        "",
    ]
    if plan.spec.owner_scoped:
        lines += [
            f"Each {names.label} belongs to the user who created it. A member sees and changes "
            f"only their own; another member's {names.label} answers 404, as a missing one does. "
            "An admin sees all.",
            "",
        ]
    lines += ["## Fields", "", "| field | type | rules |", "| --- | --- | --- |"]
    lines.append("| `id` | integer | set by the server |")
    for name, spec in plan.api_fields.items():
        lines.append(f"| `{name}` | {_type(spec)} | {_rules(spec)} |")
    for flag, phone in plan.opt_out_flags.items():
        lines.append(f"| `{flag}` | boolean | set by the server: `{phone}` replied STOP |")
    if plan.spec.owner_scoped:
        lines.append("| `owner_id` | integer | set by the server: the creator |")
    lines += ["| `created_at`, `updated_at` | timestamp | set by the server, UTC |", ""]
    lines += ["## Endpoints", "", "| call | success | failures |", "| --- | --- | --- |"]
    endpoints = {
        "create": (f"`POST {base}`", "201 + record, `Location`", "422"),
        "list": (f"`GET {base}`", "200 + page", "422"),
        "read": (f"`GET {base}/{{id}}`", "200 + record", "404"),
        "update": (f"`PATCH {base}/{{id}}` (partial)", "200 + record", "404, 422"),
        "delete": (f"`DELETE {base}/{{id}}`", "204", _delete_failures(plan)),
    }
    for operation, (call, success, failures) in endpoints.items():
        if plan.has(operation):
            lines.append(f"| {call} | {success} | {failures} |")
    lines.append("")
    if plan.has("list"):
        lines += _list_section(plan)
    lines += [
        "## Example",
        "",
        "```json",
        json.dumps(_example(plan), indent=2),
        "```",
        "",
        "answers",
        "",
        "```json",
        json.dumps(_read_example(plan), indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def _type(spec: FieldSpec) -> str:
    if spec.type == "enum":
        return "one of " + ", ".join(f"`{v}`" for v in spec.values)
    if spec.type == "reference":
        return f"id of a {spec.to}"
    return spec.type.replace("_", " ")


def _rules(spec: FieldSpec) -> str:
    rules = ["required" if spec.required else "optional"]
    if spec.read_only:
        rules = ["set by the server"]
    if spec.max_length is not None:
        least = spec.min_length if spec.min_length is not None else _least(spec)
        rules.append(f"{least}-{spec.max_length} characters")
    if spec.minimum is not None or spec.maximum is not None:
        rules.append(f"from {spec.minimum} to {spec.maximum}")
    if spec.default is not None:
        rules.append(f"default `{spec.default}`")
    if spec.unique:
        rules.append("unique per owner" if spec.unique == "per_owner" else "unique")
    if spec.type == "phone":
        rules.append("E.164 (read in DEFAULT_PHONE_REGION without a country code)")
    if spec.type == "reference":
        rules.append(f"on delete of the {spec.to}: {spec.on_delete.replace('_', ' ')}")
    if spec.description:
        rules.append(spec.description)
    return "; ".join(rules)


def _least(spec: FieldSpec) -> int:
    """The fewest characters a text field takes when its spec does not say (see schemas)."""
    return 1 if spec.type == "short_text" else 0


def _delete_failures(plan: Plan) -> str:
    return "404; 409 if it has payments" if plan.spec.payments else "404"


def _list_section(plan: Plan) -> list[str]:
    lines = ["## The list", "", "`limit` 1-100 (default 50), `offset` >= 0."]
    for name, spec in plan.filters.items():
        lines.append(f"- {_filter_text(name, spec)}")
    if plan.search_fields:
        lines.append(
            f"- `q`: case-insensitive literal substring of {', '.join(plan.search_fields)}."
        )
    sorts = ", ".join(f"`{key}`" for key in plan.sorts)
    lines.append(
        f"- `sort`: {sorts}, each with an optional leading `-`; default `{plan.spec.default_sort}`;"
    )
    lines.append("  ties are broken by id, so paging returns every record exactly once.")
    return [*lines, ""]


def _filter_text(name: str, spec: FieldSpec) -> str:
    parts = []
    if "in" in spec.filter:
        parts.append(f"`{name}` (repeat it to match any of several)")
    elif "eq" in spec.filter:
        parts.append(f"`{name}` (exactly)")
    if "range" in spec.filter:
        parts.append(f"`{name}_from` / `{name}_to` (inclusive)")
    if "contains" in spec.filter:
        parts.append(f"`{name}_contains` (case-insensitive substring)")
    return ", ".join(parts) + "."


def _example(plan: Plan) -> dict[str, object]:
    return {n: example_of(n, f) for n, f in plan.input_fields.items() if f.type != "money"}


def _read_example(plan: Plan) -> dict[str, object]:
    example: dict[str, object] = {"id": 42}
    example.update(
        {n: read_example_of(n, f) for n, f in plan.api_fields.items() if f.type != "money"}
    )
    example.update(dict.fromkeys(plan.opt_out_flags, False))
    return example
