"""A copy of this working tree in a temporary folder, for commands that write into the repo.

The copy holds every file git knows or would add (tracked and untracked, not ignored), as
they are on disk, committed in a git repository of its own (tests and tools that ask git
which files exist work there too), and a `.venv` link to this checkout's virtualenv, so
`make` and `python -m ...` run there exactly as in a fresh clone that has been set up.
"""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `make` in the copy must not reinstall into the shared virtualenv when pyproject.toml is newer.
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed-dev", "-o", ".venv/.installed-run"]


def copy_repository(target: Path, *, with_caches: bool = False) -> Path:
    """Copy the working tree to `target`; return `target`.

    Args:
        target: a folder that does not exist yet.
        with_caches: also copy mypy's cache, so a type check there starts warm.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to((ROOT / ".venv").resolve(), target_is_directory=True)
    if with_caches and (ROOT / ".mypy_cache").is_dir():
        shutil.copytree(ROOT / ".mypy_cache", target / ".mypy_cache")
    identity = ["-c", "user.name=repo copy", "-c", "user.email=copy@example.com"]
    for argv in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-q", "-m", "copy"]):
        subprocess.run(["git", *argv], cwd=target, capture_output=True, check=True)
    return target


def run_in(
    copy: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in the copy, importing the copy's code; its output captured."""
    full_env = {**os.environ, "PYTHONPATH": str(copy), **(env or {})}
    return subprocess.run(argv, cwd=copy, env=full_env, capture_output=True, text=True, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    """Fail with the end of the command's output unless it exited 0; return its stdout."""
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}:\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout
