"""The committed `openapi.json` and `api.md` are what `make docs` generates from the live app."""

import difflib
import re
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from backend.app.core.errors import ConflictError, error_responses
from backend.app.docs.generate import (
    OPENAPI_FILE,
    REFERENCE_FILE,
    build_openapi,
    parse_env_example,
    render_files,
)
from backend.app.docs.reference import render_reference

STALE = "is stale: run `make docs` (python -m backend.app.docs.generate) and commit the result"
CODE_IN_DESCRIPTION = re.compile(r"`([a-z0-9_]+)`")


@pytest.fixture(scope="module")
def generated() -> dict:
    return render_files()


def spec_error_codes(spec: dict) -> set[str]:
    """Every code quoted in the description of a 4xx/5xx response, read independently."""
    return {
        code
        for item in spec["paths"].values()
        for op in item.values()
        for status, response in op.get("responses", {}).items()
        if status[0] in "45"
        for code in CODE_IN_DESCRIPTION.findall(response.get("description", ""))
    }


def assert_fresh(path: Path, expected: str) -> None:
    """Fail with the first lines of the diff when `path` differs from `expected`."""
    assert path.exists(), f"{path} is missing: run `make docs`"
    actual = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            actual.splitlines(), expected.splitlines(), "on disk", "generated", lineterm=""
        )
        excerpt = "\n".join(list(diff)[:40])
        pytest.fail(f"{path.name} {STALE}\n{excerpt}")


def test_openapi_json_on_disk_is_fresh(generated):
    assert_fresh(OPENAPI_FILE, generated[OPENAPI_FILE])


def test_api_md_on_disk_is_fresh(generated):
    assert_fresh(REFERENCE_FILE, generated[REFERENCE_FILE])


def test_generation_is_deterministic(generated):
    assert render_files() == generated


def test_api_md_documents_every_operation_and_error_code(generated):
    spec = build_openapi()
    reference = generated[REFERENCE_FILE]
    operations = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    codes = spec_error_codes(spec)
    assert operations, "the spec should have operations"
    assert codes, "the spec should document error codes"
    missing_ops = [op for op in operations if f"#### {op}\n" not in reference]
    missing_codes = [code for code in codes if f"| `{code}` |" not in reference]
    assert not missing_ops, f"operations without a section in api.md: {missing_ops}"
    assert not missing_codes, f"error codes missing from the api.md list: {missing_codes}"
    for name in spec["components"]["schemas"]:
        assert f"### {name}\n" in reference, f"schema {name} has no section in api.md"


def test_env_example_parsing_keeps_sections_defaults_and_shared_comments():
    text = (
        "# Intro, not attached to anything.\n\n"
        "# --- Billing ---------------------------\n"
        "# Secret API key | from the dashboard.\n"
        "STRIPE_SECRET_KEY=\n"
        "# Both URLs the customer returns to.\n"
        "SUCCESS_URL=https://example.com/ok\n"
        "CANCEL_URL=https://example.com/no\n\n"
        "UNCOMMENTED=1\n"
    )
    assert parse_env_example(text) == [
        ("Billing", "STRIPE_SECRET_KEY", "", "Secret API key | from the dashboard."),
        ("Billing", "SUCCESS_URL", "https://example.com/ok", "Both URLs the customer returns to."),
        ("Billing", "CANCEL_URL", "https://example.com/no", "Both URLs the customer returns to."),
        ("Billing", "UNCOMMENTED", "1", ""),
    ]


class _WidgetTakenError(ConflictError):
    code = "widget_taken"
    default_message = "That widget is taken."


class _WidgetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"label": "w1"}]})

    label: str = Field(min_length=2, max_length=9)


class _WidgetRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id": 7, "label": "w1"}]})

    id: int
    label: str


def test_a_new_entity_is_documented_without_changing_the_generator():
    router = APIRouter(prefix="/api/v1/widgets", tags=["widgets"])

    @router.post(
        "",
        status_code=201,
        response_model=_WidgetRead,
        responses=error_responses(_WidgetTakenError),
    )
    async def create_widget(body: _WidgetCreate) -> _WidgetRead:
        return _WidgetRead(id=7, label=body.label)

    app = FastAPI(title="Widgets", version="9.9.9")
    app.include_router(router)
    env = [("Widgets", "WIDGET_LIMIT", "5", "How many widgets.")]
    reference = render_reference(app.openapi(), env)

    assert "# Widgets reference (version 9.9.9)" in reference
    assert "### widgets\n" in reference
    assert "#### POST /api/v1/widgets\n" in reference
    assert "**Auth:** no bearer token." in reference
    assert "| `label` | string | yes | no | min length 2, max length 9 |" in reference
    assert "| `id` | integer | yes | no |  | *Server-set.* |" in reference
    assert '"label": "w1"' in reference
    assert '"id": 7' in reference
    assert "| 409 | `widget_taken`: That widget is taken. |" in reference
    assert "| `widget_taken` | 409 | That widget is taken. |" in reference
    assert "| `WIDGET_LIMIT` | `5` | How many widgets. |" in reference
