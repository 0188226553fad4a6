"""The live API keeps the contract recorded for its version; changing it takes a deliberate step.

The committed baseline (`backend/app/docs/baselines/openapi.v<major>.json`) is checked
against the live app here, on every `make test`. The other tests run the mechanism on copies
of the live document in a temporary folder: what `make api-check` and `make api-baseline`
do when an agent adds, breaks, accepts or bumps.
"""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from backend.app.docs.api_baseline import (
    BASELINE_DIR,
    baseline_path,
    check,
    main,
    major_version,
    record,
)
from backend.app.docs.generate import OPENAPI_FILE, build_openapi, render_files

Json = dict[str, Any]
ME = "/api/v1/users/me"


@pytest.fixture(scope="module")
def live() -> Json:
    return build_openapi()


def without_user_email(spec: Json) -> Json:
    """The live document with `email` taken out of the user's response shape."""
    broken = copy.deepcopy(spec)
    user = broken["components"]["schemas"]["UserRead"]
    del user["properties"]["email"]
    user["required"].remove("email")
    return broken


def bumped(spec: Json, version: str) -> Json:
    """The document served as `version`, every `/api/v1` path moved to its major's prefix."""
    prefix = f"/api/v{major_version({'info': {'version': version}})}"
    moved = copy.deepcopy(spec)
    moved["info"]["version"] = version
    moved["paths"] = {
        path.replace("/api/v1", prefix, 1): item for path, item in spec["paths"].items()
    }
    return moved


def test_the_live_api_keeps_its_recorded_contract(live: Json) -> None:
    verdict = check(live)

    assert verdict.ok, verdict.text()
    assert verdict.baseline == baseline_path(major_version(live))


def test_the_committed_baseline_is_a_document_of_this_api(live: Json) -> None:
    baseline = json.loads(baseline_path(major_version(live)).read_text(encoding="utf-8"))

    assert baseline["info"]["title"] == live["info"]["title"]
    assert major_version(baseline) == major_version(live)
    assert len(baseline["paths"]) >= 5


def test_make_docs_never_writes_a_baseline() -> None:
    written = render_files()

    assert OPENAPI_FILE in written
    assert not any(path.is_relative_to(BASELINE_DIR) for path in written)


def test_a_break_of_the_live_api_fails_the_check_with_a_readable_report(live: Json) -> None:
    verdict = check(without_user_email(live))

    assert not verdict.ok
    lines = verdict.text().splitlines()
    assert f"  GET {ME}: 200 response: email: field removed" in lines
    assert "  GET /api/v1/users: 200 response: items[].email: field removed" in lines
    assert any("make api-baseline" in line for line in lines)


def test_an_addition_passes_and_recording_it_protects_it(live: Json, tmp_path: Path) -> None:
    record(live, tmp_path)
    added = copy.deepcopy(live)
    added["components"]["schemas"]["UserRead"]["properties"]["score"] = {"type": "integer"}

    assert check(added, tmp_path).ok
    assert record(added, tmp_path).recorded
    removed_again = check(live, tmp_path)
    assert [str(b) for b in removed_again.breaks if "GET /api/v1/users:" in str(b)] == [
        "GET /api/v1/users: 200 response: items[].score: field removed"
    ]


def test_recording_refuses_a_break_unless_it_is_accepted(live: Json, tmp_path: Path) -> None:
    record(live, tmp_path)
    baseline = baseline_path(1, tmp_path)
    before = baseline.read_text(encoding="utf-8")

    refused = record(without_user_email(live), tmp_path)
    assert not refused.recorded
    assert refused.breaks
    assert baseline.read_text(encoding="utf-8") == before

    accepted = record(without_user_email(live), tmp_path, accept_breaking=True)
    assert accepted.recorded
    assert check(without_user_email(live), tmp_path).ok


def test_a_new_major_version_needs_its_own_baseline(live: Json, tmp_path: Path) -> None:
    record(live, tmp_path)
    v2 = bumped(without_user_email(live), "2.0.0")

    unrecorded = check(v2, tmp_path)
    assert not unrecorded.ok
    assert unrecorded.problems == [
        f"API v2 has no baseline ({baseline_path(2, tmp_path)}; recorded: v1). "
        "If the version was bumped deliberately, record it with `make api-baseline`."
    ]

    assert record(v2, tmp_path).recorded
    assert check(v2, tmp_path).ok
    assert baseline_path(1, tmp_path).is_file(), "the v1 baseline stays as history"
    assert check(bumped(live, "2.1.0"), tmp_path).ok, "giving email back in v2 is an addition"


def test_the_version_and_the_url_prefix_move_together(live: Json, tmp_path: Path) -> None:
    record(live, tmp_path)
    version_only = copy.deepcopy(live)
    version_only["info"]["version"] = "2.0.0"

    verdict = check(version_only, tmp_path)
    assert verdict.problems[0] == (
        "The app serves /api/v1 but its version is 2.0.0: keep version= in "
        "backend/app/main.py and API_PREFIX on the same major number."
    )
    assert not record(version_only, tmp_path).recorded
    prefix_only = copy.deepcopy(live)
    prefix_only["paths"]["/api/v2/users"] = prefix_only["paths"]["/api/v1/users"]
    assert (
        check(prefix_only, tmp_path)
        .problems[0]
        .startswith(f"The app serves /api/v2 but its version is {live['info']['version']}")
    )


def test_the_command_checks_the_live_app(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert "keeps the contract of backend/app/docs/baselines/openapi.v1.json" in (
        capsys.readouterr().out
    )
