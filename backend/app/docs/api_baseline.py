"""The API's recorded contract: check the live app against it, or record it deliberately.

`baselines/openapi.v<major>.json` (next to this module) is the OpenAPI document clients of
API version `<major>` were built against. Unlike `openapi.json`, which `make docs` rewrites on
every change, a baseline changes only when someone runs `make api-baseline`:

- `make api-check` (`python -m backend.app.docs.api_baseline check`; the suite runs the same
  check) fails when the live app breaks a client of its version's baseline; `compat.py` says
  what counts as breaking. Additions (a new entity, field or optional parameter) pass.
- `make api-baseline` records the live document as its major version's baseline, so that
  additions are protected from then on. It refuses while there are breaking changes.
- A deliberate break is a new major version: bump `version=` in `main.py` and `API_PREFIX`
  together (`2.0.0`, `/api/v2`), then `make api-baseline` writes `openapi.v2.json`; the check
  fails until it does, and the v1 baseline stays as history.
- A fix within the version (an input the contract always meant to refuse, now refused):
  `make api-baseline ACCEPT_BREAKING=1`, and say in the commit why no client can rely on it.
"""

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from backend.app.docs.compat import Break, breaking_changes, report
from backend.app.docs.compat_schema import Json
from backend.app.docs.generate import DOCS_DIR, REPO_ROOT, build_openapi

BASELINE_DIR = DOCS_DIR / "baselines"
VERSIONED_PREFIX = re.compile(r"^/api/v(\d+)(?:/|$)")
LEADING_NUMBER = re.compile(r"\d+")
BASELINE_FILE = re.compile(r"^openapi\.v(\d+)\.json$")


@dataclass
class Verdict:
    """What the check found: breaking changes, and problems with the versioning itself."""

    version: str
    baseline: Path
    breaks: list[Break] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    recorded: bool = False

    @property
    def ok(self) -> bool:
        """Return whether the live API may be served as this version."""
        return not self.breaks and not self.problems

    def text(self) -> str:
        """Return the report a person reads: the verdict, each break, what to do."""
        lines = [*self.problems]
        if self.breaks:
            lines.append(
                f"{len(self.breaks)} change(s) break clients of {_shown(self.baseline)} "
                f"(API {self.version}):"
            )
            lines += [f"  {line}" for line in report(self.breaks).splitlines()]
            lines.append(
                "Restore what clients rely on, or make it a new major version: bump version= in "
                "backend/app/main.py and API_PREFIX together, then `make api-baseline`. A "
                "deliberate fix within this version: `make api-baseline ACCEPT_BREAKING=1`, "
                "and say why in the commit."
            )
        if self.ok:
            lines.append(f"API {self.version} keeps the contract of {_shown(self.baseline)}.")
        return "\n".join(lines)


def major_version(spec: Json) -> int:
    """Return the major number of the document's `info.version` (`1.2.0` -> 1)."""
    match = LEADING_NUMBER.match(str(spec.get("info", {}).get("version", "")))
    return int(match[0]) if match else 0


def baseline_path(major: int, directory: Path = BASELINE_DIR) -> Path:
    """Return the file that holds the baseline of API version `major`."""
    return directory / f"openapi.v{major}.json"


def recorded_majors(directory: Path = BASELINE_DIR) -> list[int]:
    """Return the major versions that have a baseline in `directory`, in order."""
    if not directory.is_dir():
        return []
    found = (BASELINE_FILE.match(path.name) for path in directory.iterdir())
    return sorted(int(match[1]) for match in found if match)


def version_problems(spec: Json) -> list[str]:
    """Return why the document's version and its `/api/vN` paths disagree, if they do."""
    prefixes = {int(m[1]) for path in spec.get("paths", {}) if (m := VERSIONED_PREFIX.match(path))}
    version = spec.get("info", {}).get("version")
    if prefixes and max(prefixes) != major_version(spec):
        return [
            f"The app serves /api/v{max(prefixes)} but its version is {version}: keep "
            "version= in backend/app/main.py and API_PREFIX on the same major number."
        ]
    return []


def check(spec: Json, directory: Path = BASELINE_DIR) -> Verdict:
    """Compare `spec` with the baseline of its major version.

    Args:
        spec: The live OpenAPI document.
        directory: Where the baselines are.

    Returns:
        The verdict; not ok when a change breaks clients, the version has no baseline
        yet, or the version and the URL prefix disagree.
    """
    major = major_version(spec)
    path = baseline_path(major, directory)
    verdict = Verdict(str(spec.get("info", {}).get("version")), path)
    verdict.problems += version_problems(spec)
    if path.is_file():
        verdict.breaks = breaking_changes(_load(path), spec)
        return verdict
    earlier = [f"v{n}" for n in recorded_majors(directory)] or ["none"]
    verdict.problems.append(
        f"API v{major} has no baseline ({_shown(path)}; recorded: {', '.join(earlier)}). "
        "If the version was bumped deliberately, record it with `make api-baseline`."
    )
    return verdict


def record(spec: Json, directory: Path = BASELINE_DIR, *, accept_breaking: bool = False) -> Verdict:
    """Write `spec` as the baseline of its major version, unless that would hide a break.

    Args:
        spec: The live OpenAPI document.
        directory: Where the baselines are.
        accept_breaking: Record even if `spec` breaks the version's current baseline.

    Returns:
        The verdict against the version's previous baseline; `recorded` says whether the
        file was written (no problems, and no breaks or `accept_breaking`).
    """
    major = major_version(spec)
    path = baseline_path(major, directory)
    verdict = Verdict(str(spec.get("info", {}).get("version")), path)
    verdict.problems += version_problems(spec)
    if path.is_file():
        verdict.breaks = breaking_changes(_load(path), spec)
    if verdict.problems or (verdict.breaks and not accept_breaking):
        return verdict
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    verdict.recorded = True
    return verdict


def _load(path: Path) -> Json:
    loaded: Json = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    """Run `check` or `record` on the live app; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m backend.app.docs.api_baseline")
    parser.add_argument("command", choices=["check", "record"])
    parser.add_argument(
        "--accept-breaking",
        action="store_true",
        help="record even though clients of the current baseline break (say why in the commit)",
    )
    args = parser.parse_args(argv)
    spec = build_openapi()
    if args.command == "check":
        verdict = check(spec)
        print(verdict.text(), file=sys.stdout if verdict.ok else sys.stderr)
        return 0 if verdict.ok else 1
    verdict = record(spec, accept_breaking=args.accept_breaking)
    if not verdict.recorded:
        print(verdict.text(), file=sys.stderr)
        print(f"{_shown(verdict.baseline)} was not written.", file=sys.stderr)
        return 1
    if verdict.breaks:
        print(f"Accepted {len(verdict.breaks)} breaking change(s):\n{report(verdict.breaks)}")
    print(f"{_shown(verdict.baseline)} recorded (API {verdict.version}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
