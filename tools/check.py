"""`python -m tools.check` (`make check`): every fast check, then one verdict line.

Runs, in this order of report:

- **lint**: `ruff check .` and `ruff format --check .`
- **types**: `mypy` (strict, over `backend/` and `tools/`)
- **conform**: `python -m tools.conform`, the MUST list of `backend/backend_overview.md`
- **drift**: the committed `openapi.json`/`api.md` match the app
  (`python -m backend.app.docs.generate --check`); the app keeps its version's API baseline
  (`python -m backend.app.docs.api_baseline check`); the models match migration head
  (`python -m tools.migration check`, on a scratch database); every generated slice matches
  its spec (`python -m tools.generate --check`)
- **tests**: pytest on SQLite only (`TEST_DATABASES=sqlite`), in parallel (pytest-xdist),
  without the tests marked `slow` (browser, subprocess servers, fuzzing, benchmarks, the
  generator's self-test): `make test` runs those, and everything on PostgreSQL too.

The tests start first and the other checks run beside them, one at a time. A failed check
prints its output and how to fix it; the last line is always the verdict:
`make check: PASSED (...) in N s` or `make check: FAILED: <checks> in N s`.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GROUPS = ["lint", "types", "conform", "drift", "tests"]
SHOWN_LINES = 60  # of a failed check's output


@dataclass(frozen=True)
class Check:
    """One command: the group it reports under, its name, and how to fix its failure."""

    group: str
    name: str
    argv: list[str]
    fix: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """What one check did: its exit status, its output and how long it took."""

    check: Check
    returncode: int
    output: str
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether the command exited 0."""
        return self.returncode == 0


def static_checks() -> list[Check]:
    """The checks that read the code and the committed files (no test database)."""
    return [
        Check(
            "lint",
            "ruff check",
            [PY, "-m", "ruff", "check", "."],
            "make format, then fix the rest by hand",
        ),
        Check("lint", "ruff format", [PY, "-m", "ruff", "format", "--check", "."], "make format"),
        Check("types", "mypy", [PY, "-m", "mypy"], "fix each error at its file:line"),
        Check("conform", "conform", [PY, "-m", "tools.conform"], "each line names its fix"),
        Check(
            "drift",
            "api docs",
            [PY, "-m", "backend.app.docs.generate", "--check"],
            "make docs, and commit openapi.json and api.md",
        ),
        Check(
            "drift",
            "api baseline",
            [PY, "-m", "backend.app.docs.api_baseline", "check"],
            "keep the field/path/enum, or bump the API version (README: API versions)",
        ),
        Check(
            "drift",
            "migrations",
            [PY, "-m", "tools.migration", "check"],
            'make migration MSG="what changed", then read the revision',
        ),
        Check(
            "drift",
            "generated code",
            [PY, "-m", "tools.generate", "--check", "--quiet"],
            "make entity SPEC=<the spec named above>",
        ),
    ]


def suite_check(workers: int, pytest_args: list[str]) -> Check:
    """The SQLite suite without the `slow` tests, on `workers` pytest-xdist workers."""
    argv = [PY, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider"]
    argv += ["-n", str(workers)] if workers > 1 else []
    return Check(
        "tests",
        "pytest (SQLite)",
        [*argv, *pytest_args],
        "run the failing test alone: .venv/bin/pytest <test id> -x",
        env={"TEST_DATABASES": "sqlite"},
    )


def run(check: Check) -> Result:
    """Run one check in the repository, its output captured."""
    started = time.monotonic()
    completed = subprocess.run(  # noqa: S603 - our own tools, fixed arguments
        check.argv,
        cwd=ROOT,
        env={**os.environ, **check.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return Result(check, completed.returncode, completed.stdout, time.monotonic() - started)


def report(result: Result) -> None:
    """Print one line for the check, and the end of its output if it failed."""
    mark = "ok  " if result.passed else "FAIL"
    print(f"  {mark}  {result.check.group:<8} {result.check.name:<16} {result.seconds:5.1f} s")
    if result.passed:
        return
    lines = result.output.rstrip().splitlines()
    shown = lines[-SHOWN_LINES:]
    if len(lines) > len(shown):
        print(f"        ... {len(lines) - len(shown)} lines above left out")
    for line in shown:
        print(f"        {line}")
    print(f"        fix: {result.check.fix}")
    sys.stdout.flush()


def passed_tests(output: str) -> str:
    """Return pytest's counts from its last line, e.g. `812 tests`, or `tests` if none."""
    passed = re.findall(r"(\d+) passed", output)
    return f"{passed[-1]} tests" if passed else "tests"


def verdict(results: list[Result], seconds: float) -> str:
    """The one line that says whether everything passed, and if not, which checks failed."""
    failed = [r for r in results if not r.passed]
    if failed:
        names = ", ".join(f"{r.check.group} ({r.check.name})" for r in failed)
        return f"make check: FAILED: {names} in {seconds:.0f} s"
    parts = [g for g in GROUPS if g != "tests"]
    tests = [r for r in results if r.check.group == "tests"]
    parts += [passed_tests(tests[0].output)] if tests else []
    return f"make check: PASSED ({', '.join(parts)}) in {seconds:.0f} s"


def main(argv: list[str] | None = None) -> int:
    """Run every check, print each outcome and the verdict; return 0 only if all passed."""
    parser = argparse.ArgumentParser(prog="python -m tools.check", description=__doc__)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="pytest-xdist workers (1: none)"
    )
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tests = suite_check(args.workers, args.pytest_args)
    print(f"make check: lint, types, conform, drift; tests on SQLite ({args.workers} workers)")
    sys.stdout.flush()
    with ThreadPoolExecutor(max_workers=2) as pool:
        test_run: Future[Result] = pool.submit(run, tests)
        results: list[Result] = []
        for check in static_checks():
            results.append(run(check))
            report(results[-1])
        results.append(test_run.result())
    report(results[-1])
    line = verdict(results, time.monotonic() - started)
    print(line)
    return 0 if line.startswith("make check: PASSED") else 1


if __name__ == "__main__":
    sys.exit(main())
