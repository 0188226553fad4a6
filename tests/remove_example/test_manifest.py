"""The example's manifest and markers stay true as the repository changes (fast; no copy).

`test_removal.py` proves the removal end to end in a copy (slow); these catch the usual drift
at once: a new lead file not in the manifest, a listed file that moved, a marker left open,
a file that stays but imports one that goes.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.remove_example.manifest import FILES, KEPT, ROUTERS, SPEC
from tools.remove_example.markers import MarkerError, has_blocks, marked_files, strip_blocks

ROOT = Path(__file__).resolve().parents[2]


def _repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [name for name in listed if (ROOT / name).is_file()]


def _module(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def test_every_listed_file_exists() -> None:
    assert [name for name in [*FILES, *KEPT, SPEC] if not (ROOT / name).is_file()] == []


def test_every_file_named_after_leads_is_listed() -> None:
    named = {name for name in _repository_files() if "lead" in Path(name).name.lower()}
    assert sorted(named - {*FILES, *KEPT}) == []


def test_every_listed_router_is_registered_and_goes() -> None:
    main = (ROOT / "backend/app/main.py").read_text()
    for module in ROUTERS:
        assert f"backend/app/routers/{module}.py" in FILES
        assert f"include_protected(api, {module}.router)" in main


def test_markers_are_balanced_and_only_in_files_that_stay() -> None:
    marked = [str(path.relative_to(ROOT)) for path in marked_files(ROOT)]
    assert len(marked) >= 10
    for name in marked:
        if name not in FILES:
            strip_blocks((ROOT / name).read_text(), where=name)  # raises if unbalanced


@pytest.mark.parametrize(
    "text",
    [
        "a\n# example:lead start\nb\n",
        "a\n# example:lead end\n",
        "# example:lead start\n# example:lead start\n# example:lead end\n",
    ],
)
def test_unbalanced_markers_are_refused(text: str) -> None:
    with pytest.raises(MarkerError):
        strip_blocks(text)


def test_a_block_goes_with_its_markers_in_any_comment_syntax() -> None:
    text = "keep\n    # example:lead start\ngone\n<!-- example:lead end -->\nkept too\n"
    assert strip_blocks(text) == "keep\nkept too\n"
    assert not has_blocks("prose that quotes `# example:lead start` is not a marker\n")


def test_no_file_that_stays_imports_one_that_goes(tmp_path: Path) -> None:
    """Each staying file, stripped as the removal strips it, then rid of unused imports by
    ruff as the removal does, names no module that goes."""
    gone = [_module(name) for name in FILES if name.endswith(".py")]
    pattern = re.compile(
        "|".join(
            rf"^\s*(?:from|import) {re.escape(module)}\b|^\s*from "
            rf"{re.escape(module.rpartition('.')[0])} import (?:\([^)]*\b|[^\n]*\b)"
            rf"{re.escape(module.rpartition('.')[2])}\b"
            for module in gone
        ),
        re.M,
    )
    staying = [
        name
        for name in _repository_files()
        if name.endswith(".py") and name not in FILES and not name.startswith("backend/migrations")
    ]
    for name in staying:
        source = strip_blocks((ROOT / name).read_text(), where=name)
        if name == "backend/app/main.py":  # its router list is taken apart by the removal
            source = re.sub(r"from backend\.app\.routers import \([^)]*\)", "", source)
            source = re.sub(r"\n\s*protected\.include_router\(\w+\.router\)", "", source)
        if name == "backend/app/models/__init__.py":  # as is its model list
            source = source.replace("from backend.app.models.lead import Lead, LeadStatus", "")
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    ruff = [sys.executable, "-m", "ruff", "check", "--isolated", "--quiet", "--fix"]
    subprocess.run([*ruff, "--select", "F401", "--exit-zero", str(tmp_path)], check=True)
    importing = []
    for name in staying:
        if found := pattern.search((tmp_path / name).read_text()):
            importing.append(f"{name}: {found[0]}")
    assert importing == []
