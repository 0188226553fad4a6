"""The generator's self-test: specs using every field type and modifier, generated into a copy
of the repository, pass its `make check` there with no edit.

`tests/generate/specs/` holds the kitchen sink: `project` (every field type and modifier),
`milestone` (a reference to `project` and one to `user`) and `tag` (shared, not owner-scoped,
no update or delete). The copy is made from this working tree, the generator runs there as
an agent would run `make entity`, and then the copy's `make check` must end in PASSED (lint,
types, conformance, drift, and every fast test on SQLite, the contract tests of the three new
entities among them). The tests that cover every entity then run on PostgreSQL too.
"""

import re
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKENDS
from tests.repo_copy import MAKE, ROOT, assert_ok, copy_repository, run_in

SPECS = ["project", "milestone", "tag"]
ENTITY_TESTS = [
    "tests/api/test_entity_contract.py",
    "tests/api/test_query_budget.py",
    "tests/migrations/test_migrations.py",
]


@pytest.mark.slow
def test_the_kitchen_sink_generates_into_a_repository_whose_make_check_passes(tmp_path: Path):
    copy = copy_repository(tmp_path / "repo", with_caches=True)
    for name in SPECS:
        (copy / f"backend/app/docs/specs/{name}.yaml").write_bytes(
            (ROOT / f"tests/generate/specs/{name}.yaml").read_bytes()
        )
    specs = [f"backend/app/docs/specs/{name}.yaml" for name in SPECS]
    python = sys.executable

    made = assert_ok(run_in(copy, *MAKE, "entity", f"SPEC={' '.join(specs)}"))
    assert "wrote      backend/app/models/project.py" in made
    again = assert_ok(run_in(copy, python, "-m", "tools.generate", "--check"))
    assert "STALE" not in again  # a second run would change nothing

    checked = run_in(copy, *MAKE, "check")

    verdict = checked.stdout.rstrip().splitlines()[-1] if checked.stdout.strip() else ""
    assert checked.returncode == 0, f"{verdict}\n{checked.stdout[-8000:]}{checked.stderr[-2000:]}"
    assert re.fullmatch(
        r"make check: PASSED \(lint, types, conform, drift, \d+ tests\) in \d+ s", verdict
    ), verdict
    sqlite_only = {"TEST_DATABASES": "sqlite"}
    collected = assert_ok(
        run_in(copy, python, "-m", "pytest", "--collect-only", "-q", "-m", "not slow",
               ENTITY_TESTS[0], env=sqlite_only)
    )  # fmt: skip
    for name in SPECS:  # so `make check` ran the new entities' contract tests
        assert f"[sqlite-{name}" in collected, f"no contract test of {name}:\n{collected}"
    if "postgresql" in BACKENDS:
        assert_ok(
            run_in(copy, python, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                   *ENTITY_TESTS, env={"TEST_DATABASES": "postgresql"})
        )  # fmt: skip
