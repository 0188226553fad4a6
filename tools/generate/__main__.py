"""`python -m tools.generate [--check] SPEC...`: write each entity's slice from its spec.

Without `--check` it writes what changed and reports each file (a file edited by hand since it
was generated is never overwritten, only reported: DIFFERS), then regenerates the API docs.
With `--check` it writes nothing and exits 1 if generating would change a file (a spec edited
since its entity was generated, or a generated file gone); files edited by hand are listed,
not failed. `--check` with no SPEC checks every spec in `backend/app/docs/specs/`.
"""

import argparse
import subprocess
import sys
from pathlib import Path

from tools.generate.entity import generate
from tools.generate.spec import SpecError

ROOT = Path(__file__).resolve().parents[2]
SPECS_DIR = ROOT / "backend/app/docs/specs"


def main(argv: list[str] | None = None) -> int:
    """Generate every spec named; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.generate", description=__doc__)
    parser.add_argument("specs", nargs="*", type=Path, help="backend/app/docs/specs/<entity>.yaml")
    parser.add_argument("--check", action="store_true", help="write nothing; fail on drift")
    parser.add_argument("--quiet", action="store_true", help="leave out unchanged files")
    args = parser.parse_args(argv)
    if not args.specs and not args.check:
        parser.error("name a spec: make entity SPEC=backend/app/docs/specs/<entity>.yaml")
    specs: list[Path] = args.specs or sorted(SPECS_DIR.glob("*.yaml"))
    status = 0
    for spec in specs:
        try:
            outcome = generate(spec.resolve(), ROOT, dry_run=args.check)
        except SpecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for line in outcome.lines(checking=args.check, quiet=args.quiet):
            print(line)
        if args.check and outcome.written:
            status = 1
    if args.check and status:
        print("fix: make entity SPEC=<the spec>, or undo the spec's edit", file=sys.stderr)
    if not args.check:
        _regenerate_api_docs()
    return status


def _regenerate_api_docs() -> None:
    """Rewrite openapi.json and api.md from the app, now that it has the new routes."""
    subprocess.run([sys.executable, "-m", "backend.app.docs.generate"], cwd=ROOT, check=True)
    print("wrote      backend/app/docs/openapi.json, backend/app/docs/api.md")


if __name__ == "__main__":
    sys.exit(main())
