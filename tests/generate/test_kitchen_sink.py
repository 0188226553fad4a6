"""The generator's self-test: specs using every field type and modifier, generated into a copy
of the repository, pass its checks there with no edit.

`tests/generate/specs/` holds the kitchen sink: `project` (every field type and modifier),
`milestone` (a reference to `project` and one to `user`) and `tag` (shared, not owner-scoped,
no update or delete). The copy is made from this working tree, the generator runs there as
an agent would run `make entity`, and then lint, types, conformance, the API baseline and the
tests that cover every entity run in the copy.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = ["project", "milestone", "tag"]
TESTS = [
    "tests/api/test_entity_contract.py",
    "tests/api/test_openapi.py",
    "tests/api/test_query_budget.py",
    "tests/docs",
    "tests/migrations",
    # example:lead start
    "tests/generate/test_lead_spec.py",
    # example:lead end
]


def _copy_of_the_repository(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _run(copy: Path, *argv: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    result = subprocess.run(argv, cwd=copy, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"{' '.join(argv)}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
    )


@pytest.mark.slow
def test_the_kitchen_sink_generates_into_a_repository_that_passes_its_checks(tmp_path: Path):
    copy = tmp_path / "repo"
    _copy_of_the_repository(copy)
    for name in SPECS:
        shutil.copy2(ROOT / f"tests/generate/specs/{name}.yaml", copy / "backend/app/docs/specs")
    python = sys.executable
    specs = [f"backend/app/docs/specs/{name}.yaml" for name in SPECS]

    _run(copy, python, "-m", "tools.generate", *specs)
    _run(copy, python, "-m", "tools.generate", "--check", *specs)  # a second run changes nothing
    _run(copy, python, "-m", "ruff", "check", ".")
    _run(copy, python, "-m", "ruff", "format", "--check", ".")
    _run(copy, python, "-m", "mypy")
    _run(copy, python, "-m", "tools.conform")
    _run(copy, python, "-m", "backend.app.docs.api_baseline", "check")
    _run(copy, python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS)
