"""`python -m tools.conform`: its output, its exit status, and a rule catalogue fully tested."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conform import test_app_rules, test_source_rules
from tools.conform.__main__ import main
from tools.conform.problems import RULES, Problem
from tools.conform.runner import ROOT

ORPHAN_LINE = 5
ENV_READ = '"""Reads the environment."""\n\nimport os\n\nLIMIT = os.getenv("LIMIT")\n'


def test_a_problem_prints_as_file_line_rule_message_and_fix():
    problem = Problem("backend/app/x.py", 7, "env-read", "os.getenv reads", "use Settings")
    assert str(problem) == "backend/app/x.py:7: env-read: os.getenv reads (fix: use Settings)"


def test_json_on_the_repository_says_ok_and_exits_zero(capsys):
    assert main(["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "problems": []}


def test_rules_lists_the_catalogue(capsys):
    assert main(["--rules"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("router-registered ")


def test_a_copy_with_an_unregistered_router_and_an_env_read_exits_one(tmp_path: Path):
    """The real command, in a copy of the repository with two deliberate breaks."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "backend", tmp_path / "backend", ignore=ignore)
    shutil.copytree(ROOT / "tools", tmp_path / "tools", ignore=ignore)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    orphans = tmp_path / "backend/app/routers/orphans.py"
    orphans.write_text(test_app_rules.ORPHAN)
    (tmp_path / "backend/app/crud/settings_reader.py").write_text(ENV_READ)
    result = subprocess.run(
        [sys.executable, "-m", "tools.conform"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == [
        "backend/app/crud/settings_reader.py:5:",
        f"backend/app/routers/orphans.py:{ORPHAN_LINE}:",
        f"backend/app/routers/orphans.py:{ORPHAN_LINE + 1}:",
    ]
    assert lines[0].startswith("backend/app/crud/settings_reader.py:5: env-read: os.getenv")
    assert lines[1].endswith(")")
    assert ": router-registered: `router` is not included" in lines[1]
    assert "3 problem(s)" in result.stderr


# example:lead start
def test_every_rule_of_the_catalogue_has_a_breaking_case():
    covered = set(test_source_rules.BROKEN)
    covered |= {rule for _, rule in test_app_rules.marked()}
    covered |= {"router-registered", "list-index"}  # test_app_rules
    covered |= {"integration-layout", "integration-setting", "setting-documented"}
    assert covered == set(RULES)


# example:lead end
