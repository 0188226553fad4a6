"""Mechanical checks of the files around the code: containers, settings docs, layout.

No Docker engine runs in CI, so these read the Dockerfile and docker-compose.yml against
what the rest of the suite proves: the CLI commands they run exist, the files they copy
exist and are not ignored, and every setting they pass is one the app reads.
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from backend.app.cli import build_parser
from backend.app.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_ONLY_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def app_services() -> dict[str, dict]:  # type: ignore[type-arg]
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def settings_variables() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def env_example_variables() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line)}


def test_every_setting_is_documented_in_env_example_and_nothing_else_is() -> None:
    assert env_example_variables() == settings_variables()


def test_every_env_example_variable_has_a_comment_above_it() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            block = lines[:index]
            while block and re.match(r"^[A-Z][A-Z0-9_]*=", block[-1]):
                block.pop()
            assert block, f"{line} has no comment"
            assert block[-1].startswith("#"), f"{line} has no comment"


@pytest.mark.parametrize("service", sorted(app_services()))
def test_compose_commands_are_real_cli_commands(service: str) -> None:
    command = app_services()[service]["command"]
    assert command[:3] == ["python", "-m", "backend.app.cli"]
    build_parser().parse_args(command[3:])  # exits (fails the test) on an unknown command


@pytest.mark.parametrize("service", sorted(app_services()))
def test_compose_passes_only_settings_the_app_reads(service: str) -> None:
    environment = app_services()[service]["environment"]
    assert set(environment) <= settings_variables() | COMPOSE_ONLY_VARIABLES


def test_compose_gates_the_api_on_a_healthy_database_and_a_finished_migration() -> None:
    services = compose()["services"]
    assert "healthcheck" in services["db"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    condition = services["api"]["depends_on"]["migrate"]["condition"]
    assert condition == "service_completed_successfully"


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_copies_files_that_exist_and_are_not_ignored() -> None:
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()
    }
    for match in re.finditer(r"^COPY (?!--from)(.+)$", dockerfile(), re.MULTILINE):
        *sources, _destination = shlex.split(match.group(1))
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_dockerfile_runs_as_non_root_with_a_health_check_and_the_serve_command() -> None:
    text = dockerfile()
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE)
    assert "HEALTHCHECK" in text
    assert "/health" in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert cmd is not None
    assert yaml.safe_load(cmd.group(1)) == ["python", "-m", "backend.app.cli", "serve"]
    assert text.count("FROM ") >= 2, "the image must be multi-stage"


def test_dockerfile_python_matches_what_ci_tests() -> None:
    version = re.findall(r"FROM python:(\d+\.\d+)", dockerfile())
    assert version
    assert all(v == "3.11" for v in version)


def test_compose_runs_several_api_processes_that_add_up_their_metrics() -> None:
    api = app_services()["api"]["environment"]
    assert api["WEB_CONCURRENCY"].startswith("${WEB_CONCURRENCY:-")
    assert int(api["WEB_CONCURRENCY"].removeprefix("${WEB_CONCURRENCY:-").rstrip("}")) > 1
    assert api["PROMETHEUS_MULTIPROC_DIR"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in app_services()["worker"]["environment"]


def test_security_md_names_only_tests_and_settings_that_exist() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    for path in set(re.findall(r"`(tests/[\w/]+\.py)`", text)):
        assert (ROOT / path).is_file(), f"SECURITY.md names a missing test file: {path}"
    for name in set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", text)):
        assert name in settings_variables(), f"SECURITY.md names an unknown setting: {name}"
