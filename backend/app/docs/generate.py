"""Write `openapi.json` and `api.md` next to this module, from the live app.

Run `make docs` (`python -m backend.app.docs.generate`) after changing any route, schema,
error or `.env.example`; `--check` only compares and exits 1 when a file is stale (the test
suite does the same in-process). Nothing here is API-specific: the app's OpenAPI spec and
`.env.example` are the only sources.
"""

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from backend.app.core.config import Settings
from backend.app.docs.reference import render_reference
from backend.app.main import create_app

DOCS_DIR = Path(__file__).resolve().parent
REPO_ROOT = DOCS_DIR.parents[2]
OPENAPI_FILE = DOCS_DIR / "openapi.json"
REFERENCE_FILE = DOCS_DIR / "api.md"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

_SECTION = re.compile(r"^#\s*-+\s*(.+?)\s*-*$")
_VARIABLE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")

EnvRow = tuple[str, str, str, str]


def build_openapi() -> dict[str, Any]:
    """Return the OpenAPI document of an app built with default settings (no `.env`)."""
    settings = Settings(_env_file=None)
    spec: dict[str, Any] = create_app(settings).openapi()
    return spec


def parse_env_example(text: str) -> list[EnvRow]:
    """Read `.env.example`: one (section, name, default, comment) per variable.

    A `# --- Section ---` line starts a section; the comment lines right above a
    `NAME=value` line describe it (and the variables right after it); a blank line ends
    a comment.

    Args:
        text: The content of `.env.example`.

    Returns:
        The variables in file order.
    """
    rows: list[EnvRow] = []
    section = ""
    comment: list[str] = []
    after_variable = False  # consecutive variables share the comment above the first
    for raw in text.splitlines():
        line = raw.strip()
        heading = _SECTION.match(line)
        variable = _VARIABLE.match(line)
        if heading:
            section, comment = heading[1], []
        elif variable:
            rows.append((section, variable[1], variable[2].strip(), " ".join(comment)))
        elif line.startswith("#"):
            comment = [] if after_variable else comment
            comment.append(" ".join(line.lstrip("#").split()))
        else:
            comment = []
        after_variable = bool(variable)
    return rows


def render_files() -> dict[Path, str]:
    """Return the exact content of every generated file, keyed by its path."""
    spec = build_openapi()
    env_text = ENV_EXAMPLE.read_text(encoding="utf-8") if ENV_EXAMPLE.exists() else ""
    return {
        OPENAPI_FILE: json.dumps(spec, indent=2, ensure_ascii=False) + "\n",
        REFERENCE_FILE: render_reference(spec, parse_env_example(env_text)),
    }


def stale_files(files: dict[Path, str]) -> list[Path]:
    """Return the paths whose content on disk differs from `files` (or that are missing)."""
    return [
        path
        for path, content in files.items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]


def main(argv: list[str] | None = None) -> int:
    """Generate the docs, or with `--check` report stale ones; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m backend.app.docs.generate")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is stale"
    )
    args = parser.parse_args(argv)
    files = render_files()
    stale = stale_files(files)
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO_ROOT)} is stale: run `make docs`.", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(files[path], encoding="utf-8")
    for path in files:
        state = "written" if path in stale else "unchanged"
        print(f"{path.relative_to(REPO_ROOT)}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
