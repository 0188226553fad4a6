"""`python -m tools.remove_example`: remove the worked example (the leads) from this repository.

Prints each file deleted or edited and the migration added; exits 1 (changing nothing) if the
example is gone already or an entity of yours still refers to leads. Run it on a clean git
tree, so that `git diff --stat` shows what it did and `git checkout .` undoes it.
"""

import argparse
import sys
from pathlib import Path

from tools.remove_example.remove import RemovalError, remove_example

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    """Remove the example from the repository this module lives in; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.remove_example", description=__doc__)
    parser.parse_args(argv)
    try:
        removal = remove_example(ROOT)
    except RemovalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in removal.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
