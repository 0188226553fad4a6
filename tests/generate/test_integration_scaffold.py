"""`make integration`'s self-test: an integration generated into a copy of the repository
passes lint, types, conformance and its own tests there with no edit, and a second run
changes nothing, nor overwrites a file edited since.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repo_copy import assert_ok, copy_repository, run_in
from tools.generate.integration import IntegrationNameError, names_for

NAME = "email"
TESTS = [
    f"tests/integrations/test_{NAME}_client.py",
    f"tests/worker/test_{NAME}_delivery.py",
    "tests/migrations",
    "tests/docs",
    "tests/test_project_files.py",
]


def _generate(copy: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    command = [sys.executable, "-m", "tools.generate.integration", *argv]
    return subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_a_generated_integration_passes_the_checks_with_no_edit(tmp_path: Path):
    copy = tmp_path / "repo"
    copy_repository(copy, with_caches=True)
    python = sys.executable

    first = _generate(copy, NAME)
    assert first.returncode == 0, first.stderr
    assert f"wrote      backend/app/integrations/{NAME}/{NAME}.py" in first.stdout
    again = _generate(copy, NAME, "--check")
    assert again.returncode == 0, again.stdout  # a second run changes nothing
    assert "wrote" not in again.stdout
    assert_ok(run_in(copy, python, "-m", "ruff", "check", "."))
    assert_ok(run_in(copy, python, "-m", "ruff", "format", "--check", "."))
    assert_ok(run_in(copy, python, "-m", "mypy"))
    assert_ok(run_in(copy, python, "-m", "tools.conform"))
    assert_ok(
        run_in(
            copy,
            python,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            *TESTS,
        )
    )

    edited = copy / f"backend/app/integrations/{NAME}/{NAME}.py"
    text = edited.read_text().replace('SEND_PATH = "/v1/send"', 'SEND_PATH = "/v3/mail/send"')
    edited.write_text(text)
    rerun = _generate(copy, NAME)
    assert rerun.returncode == 0, rerun.stderr
    assert f"DIFFERS    backend/app/integrations/{NAME}/{NAME}.py" in rerun.stdout
    assert edited.read_text() == text  # never overwritten


@pytest.mark.parametrize("name", ["Email", "e-mail", "twilio", "sms", "1mail", ""])
def test_a_name_that_is_not_a_new_snake_case_name_is_refused(name: str):
    with pytest.raises(IntegrationNameError):
        names_for(name)


def test_names_are_spelled_for_each_place():
    names = names_for("push_notification")
    assert (names.cls, names.upper, names.title, names.display) == (
        "PushNotification",
        "PUSH_NOTIFICATION",
        "push notification",
        "Push notification",
    )
