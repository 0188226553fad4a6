"""`python -m tools.conform [--json]`: check the MUST list; exit 1 when anything fails."""

import argparse
import json
import sys
from dataclasses import asdict

from tools.conform.problems import RULES
from tools.conform.runner import run


def main(argv: list[str] | None = None) -> int:
    """Print one line per problem (or JSON with --json); return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.conform", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the problems as JSON")
    parser.add_argument("--rules", action="store_true", help="list the rules and exit")
    args = parser.parse_args(argv)
    if args.rules:
        for rule, what in RULES.items():
            print(f"{rule:24} {what}")
        return 0
    problems = run()
    if args.json:
        print(json.dumps({"ok": not problems, "problems": [asdict(p) for p in problems]}, indent=2))
    else:
        for problem in problems:
            print(problem)
        verdict = f"{len(problems)} problem(s)" if problems else "no problems"
        print(f"conform: {len(RULES)} rules checked, {verdict}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
