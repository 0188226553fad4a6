"""Strip the lines of shared files that belong to the worked example.

A block starts at a line containing `example:lead start` and ends at the next line containing
`example:lead end`, written in whatever comment syntax the file uses (`# ...` in Python, YAML,
TOML and the Makefile; `<!-- ... -->` in Markdown; `-- ...` in Lua). Both marker lines and
every line between them are removed. A marker must be alone on its line, after the comment
sign, so prose that quotes one is left alone.
"""

import os
import re
from pathlib import Path

_COMMENT = r"^\s*(?:#|<!--|--)\s*example:lead {word}\b"
START = re.compile(_COMMENT.format(word="start"))
END = re.compile(_COMMENT.format(word="end"))

TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".yaml", ".yml", ".lua", ".cfg", ".ini", ".sh"}
TEXT_NAMES = {"Makefile", "Dockerfile", ".env.example"}
SKIPPED_DIRS = {
    ".git",
    ".venv",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "static",
    "data",
    "__pycache__",
}


class MarkerError(ValueError):
    """A start marker without its end, or an end without its start."""


def strip_blocks(text: str, *, where: str = "") -> str:
    """Return `text` without its marked blocks.

    Raises:
        MarkerError: the markers are unbalanced or nested.
    """
    kept: list[str] = []
    opened_at: int | None = None
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if START.match(line):
            if opened_at is not None:
                raise MarkerError(f"{where}:{number}: a block opened at {opened_at} is not closed")
            opened_at = number
        elif END.match(line):
            if opened_at is None:
                raise MarkerError(f"{where}:{number}: an end marker without a start")
            opened_at = None
        elif opened_at is None:
            kept.append(line)
    if opened_at is not None:
        raise MarkerError(f"{where}:{opened_at}: a block is never closed")
    return "".join(kept)


def has_blocks(text: str) -> bool:
    """Whether `text` holds any marker."""
    return any(START.match(line) or END.match(line) for line in text.splitlines())


def marked_files(root: Path) -> list[Path]:
    """Return the text files under `root` that hold a marker, sorted."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [name for name in dirs if name not in SKIPPED_DIRS]
        for name in names:
            path = Path(folder) / name
            if path.suffix not in TEXT_SUFFIXES and name not in TEXT_NAMES:
                continue
            if has_blocks(path.read_text(encoding="utf-8", errors="replace")):
                found.append(path)
    return sorted(found)
