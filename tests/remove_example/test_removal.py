"""`make remove-example` in a copy of the repository leaves a project that passes its checks.

The copy is made from this working tree (as the generator's self-test makes it), the removal
runs there as an agent would run it, and then lint, types, conformance, the API baseline and a
quick set of tests (SQLite) run in the copy: users and auth, texts, payments and the worker
with no entity, both webhooks, the migrations (the appended revision included), the docs.
The command itself goes too, with its `make` target. The whole copy's suite was proven green by hand
(see "The worked example" in backend/backend_overview.md).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repo_copy import copy_repository
from tools.remove_example.manifest import FILES

QUICK_TESTS = [
    "tests/api/test_auth.py",
    "tests/api/test_users.py",
    "tests/api/test_openapi.py",
    "tests/api/test_webhooks_stripe.py",
    "tests/api/test_webhooks_twilio.py",
    "tests/api/test_entity_contract.py",
    "tests/crud",
    "tests/worker/test_sms_worker.py",
    "tests/migrations",
    "tests/docs/test_generated_docs.py",
    "tests/docs/test_api_baseline.py",
]


def _run(copy: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run(argv, cwd=copy, env=env, capture_output=True, text=True, check=False)


def _passes(copy: Path, *argv: str) -> str:
    result = _run(copy, *argv)
    assert result.returncode == 0, (
        f"{' '.join(argv)}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
    )
    return result.stdout


@pytest.mark.slow
def test_removing_the_example_leaves_a_project_that_passes_its_checks(tmp_path: Path):
    copy = tmp_path / "repo"
    copy_repository(copy, with_caches=True)
    python = sys.executable

    report = _passes(copy, python, "-m", "tools.remove_example")
    assert f"{len(FILES)} files deleted" in report
    assert not any((copy / name).exists() for name in FILES)
    assert "/leads" not in (copy / "backend/app/docs/openapi.json").read_text()
    assert [p.name for p in (copy / "backend/migrations/versions").glob("*_remove_the_*.py")]

    _passes(copy, python, "-m", "ruff", "check", ".")
    _passes(copy, python, "-m", "ruff", "format", "--check", ".")
    _passes(copy, python, "-m", "mypy")
    _passes(copy, python, "-m", "tools.conform")
    _passes(copy, python, "-m", "backend.app.docs.api_baseline", "check")
    pytest_argv = ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly"]
    _passes(copy, python, *pytest_argv, "-k", "not postgresql", *QUICK_TESTS)

    again = _run(copy, python, "-m", "tools.remove_example")  # the command went with it
    assert again.returncode == 1
    assert "No module named tools.remove_example" in again.stderr
    assert "remove-example" not in (copy / "Makefile").read_text()
