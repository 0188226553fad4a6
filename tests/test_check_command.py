"""`make check` (`python -m tools.check`): every fast check, and one verdict line at the end."""

import re
import sys
from pathlib import Path

import pytest

from tests.repo_copy import assert_ok, copy_repository, run_in
from tools.check import Check, Result, passed_tests, static_checks, verdict

PASSED_RUN = "..........\n913 passed, 13 skipped in 30.12s\n"


def _result(group: str, name: str, returncode: int = 0, output: str = "") -> Result:
    return Result(Check(group, name, ["true"], "fix it"), returncode, output, 1.0)


def test_the_verdict_lists_every_group_and_counts_the_tests_when_all_pass():
    results = [_result(c.group, c.name) for c in static_checks()]
    results.append(_result("tests", "pytest (SQLite)", output=PASSED_RUN))

    assert verdict(results, 41.6) == (
        "make check: PASSED (lint, types, conform, drift, 913 tests) in 42 s"
    )


def test_the_verdict_names_each_failed_check():
    results = [
        _result("lint", "ruff check"),
        _result("types", "mypy", returncode=1),
        _result("drift", "migrations", returncode=1),
        _result("tests", "pytest (SQLite)", output="1 failed, 912 passed in 30.0s"),
    ]

    assert verdict(results, 40.2) == (
        "make check: FAILED: types (mypy), drift (migrations) in 40 s"
    )


def test_pytest_finding_no_test_fails_the_verdict():
    results = [_result("tests", "pytest (SQLite)", returncode=5, output="no tests ran in 0.1s")]

    assert verdict(results, 1.0) == "make check: FAILED: tests (pytest (SQLite)) in 1 s"
    assert passed_tests("no tests ran") == "tests"


def test_every_drift_named_in_the_brief_is_checked():
    commands = [" ".join(c.argv[1:]) for c in static_checks() if c.group == "drift"]

    assert commands == [
        "-m backend.app.docs.generate --check",
        "-m backend.app.docs.api_baseline check",
        "-m tools.migration check",
        "-m tools.generate --check --quiet",
    ]


@pytest.mark.slow
def test_stale_docs_and_an_edited_spec_fail_make_check_with_their_fixes(tmp_path: Path):
    copy = copy_repository(tmp_path / "repo", with_caches=True)
    spec = copy / "backend/app/docs/specs/tag.yaml"
    spec.write_bytes((Path(__file__).parent / "generate/specs/tag.yaml").read_bytes())
    assert_ok(run_in(copy, sys.executable, "-m", "tools.generate", str(spec)))
    spec.write_text(spec.read_text().replace("description: A label", "description: A word"))
    openapi = copy / "backend/app/docs/openapi.json"
    openapi.write_text(openapi.read_text().replace('"title"', '"titel"', 1))

    result = run_in(copy, sys.executable, "-m", "tools.check", "tests/test_querycount.py")

    assert result.returncode == 1, result.stdout
    lines = result.stdout.rstrip().splitlines()
    assert re.fullmatch(
        r"make check: FAILED: drift \(api docs\), drift \(generated code\) in \d+ s", lines[-1]
    ), result.stdout
    assert "        fix: make docs, and commit openapi.json and api.md" in lines
    assert any(line.startswith("        STALE      backend/app/models/tag.py") for line in lines)
    assert "  ok    tests    pytest (SQLite)" in result.stdout
