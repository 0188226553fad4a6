"""Write a new integration in the template's pattern, without ever overwriting an edited file.

`python -m tools.generate.integration NAME` (`make integration NAME=email`) writes, for a
snake_case NAME:

- `backend/app/integrations/<name>/<name>.py` (+ `__init__.py`): the `<Name>Client`
  interface, the httpx client (timeouts, tenacity retries on transient failures only, errors
  translated into ours), the zero-setup local client, the factory;
- `models/<name>_outbox.py`, `crud/<name>_outbox.py` (`queue_<name>`), the Alembic revision
  creating the outbox table (once), and `worker/<name>_delivery.py`: the worker sends it;
- `tests/fakes/<name>_fake.py` (a stand-in over real HTTP), `tests/integrations/
  test_<name>_client.py` and `tests/worker/test_<name>_delivery.py`;

and registers it where every integration is listed: its settings in `core/config.py` and
`.env.example`, its model in `models/__init__.py`, its delivery in `worker/registry.py`, its
client in the lifespan of `main.py`. The files come from `integration_templates/`; like the
entity generator, a manifest (`backend/app/integrations/manifest.json`) keeps each file's
hash as generated, so running it twice changes nothing and a file edited since is reported,
never overwritten.
"""

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Template

from tools.generate.entity import VERSIONS, Entry, Outcome, _write
from tools.generate.register_integration import register_all
from tools.generate.source import format_source

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).parent / "integration_templates"
MANIFEST = Path("backend/app/integrations/manifest.json")
NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
TAKEN = {"twilio", "stripe", "fhir", "sms", "outbox", "base", "registry", "deliveries", "loop"}


class IntegrationNameError(ValueError):
    """The name cannot be an integration's: not snake_case, or already used by the template."""


@dataclass(frozen=True)
class Names:
    """The spellings of an integration's name in the generated code."""

    name: str  # email, push_notification
    cls: str  # Email, PushNotification
    upper: str  # EMAIL, PUSH_NOTIFICATION
    title: str  # email, push notification
    display: str  # Email, Push notification

    def substitutions(self) -> dict[str, str]:
        """The values of `$name`, `$Name`, `$NAME`, `$title` and `$Title` in the templates."""
        return {
            "name": self.name,
            "Name": self.cls,
            "NAME": self.upper,
            "title": self.title,
            "Title": self.display,
        }


def names_for(name: str) -> Names:
    """Check `name` and spell it every way the templates need.

    Raises:
        IntegrationNameError: `name` is not snake_case, or is taken by the template.
    """
    if not NAME.match(name) or name in TAKEN:
        raise IntegrationNameError(
            f"{name!r}: give a new snake_case name, e.g. email or push_notification "
            f"(taken: {', '.join(sorted(TAKEN))})"
        )
    return Names(
        name=name,
        cls="".join(part.capitalize() for part in name.split("_")),
        upper=name.upper(),
        title=name.replace("_", " "),
        display=name.replace("_", " ").capitalize(),
    )


def render(template: str, names: Names) -> str:
    """The text of `integration_templates/<template>` for `names`."""
    text = (TEMPLATES / template).read_text()
    return Template(text).substitute(names.substitutions(), exports=_exports(names))


def _exports(names: Names) -> str:
    """The package's `__all__` entries, classes first, each group sorted (as ruff wants)."""
    n = names.cls
    classes = sorted([f"Http{n}Client", f"Local{n}Client", f"{n}Client", f"{n}Receipt"])
    functions = sorted([f"create_{names.name}_client", f"{names.name}_send_budget_seconds"])
    return "".join(f'    "{export}",\n' for export in [*classes, *functions])


def planned_files(names: Names) -> dict[str, str]:
    """Each generated file's path, and the template it is rendered from."""
    n = names.name
    return {
        f"backend/app/integrations/{n}/__init__.py": "init.py.tmpl",
        f"backend/app/integrations/{n}/{n}.py": "client.py.tmpl",
        f"backend/app/models/{n}_outbox.py": "model.py.tmpl",
        f"backend/app/crud/{n}_outbox.py": "crud.py.tmpl",
        f"backend/app/worker/{n}_delivery.py": "delivery.py.tmpl",
        f"tests/fakes/{n}_fake.py": "fake.py.tmpl",
        f"tests/integrations/test_{n}_client.py": "test_client.py.tmpl",
        f"tests/worker/test_{n}_delivery.py": "test_delivery.py.tmpl",
    }


def generate_integration(name: str, root: Path, *, dry_run: bool = False) -> Outcome:
    """Write (or re-write) the integration `name` under `root`; return what changed.

    Raises:
        IntegrationNameError: `name` is not a new snake_case name.
    """
    names = names_for(name)
    manifest = _read_manifest(root)
    entry = manifest.setdefault(name, {"files": {}})
    outcome = Outcome()
    for path, template in planned_files(names).items():
        source = format_source(render(template, names), root / path)
        _write(root, path, source, entry, outcome, dry_run=dry_run)
    migration = _migration(names, root, entry)
    if migration is not None:
        path, source = migration
        _write(root, path, format_source(source, root / path), entry, outcome, dry_run=dry_run)
        entry["migration"] = path
    for path, changed in register_all(root, names, dry_run=dry_run):
        (outcome.written if changed else outcome.unchanged).append(path)
    if not dry_run:
        _write_manifest(root, manifest)
    return outcome


def _migration(names: Names, root: Path, entry: Entry) -> tuple[str, str] | None:
    """The revision creating the outbox table, unless one exists (generated or by hand)."""
    if entry.get("migration"):
        return None
    table = f"{names.name}_outbox"
    versions = sorted((root / VERSIONS).glob("*.py"))
    creates = re.compile(rf'create_table\(\s*"{re.escape(table)}"')
    if any(creates.search(path.read_text()) for path in versions):
        return None
    numbers = [int(m.group(1)) for p in versions if (m := re.match(r"(\d{4})_", p.name))]
    head = f"{max(numbers):04d}" if numbers else None
    revision = f"{(max(numbers) if numbers else 0) + 1:04d}"
    values = {
        **names.substitutions(),
        "revision": revision,
        "down_revision": f'"{head}"' if head else "None",
        "revises": head or "",
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    source = Template((TEMPLATES / "migration.py.tmpl").read_text()).substitute(values)
    return f"{VERSIONS}/{revision}_{table}.py", source


def _read_manifest(root: Path) -> dict[str, Entry]:
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def _write_manifest(root: Path, manifest: dict[str, Entry]) -> None:
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Generate the integration named on the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.generate.integration")
    parser.add_argument("name", help="snake_case, e.g. email")
    parser.add_argument("--check", action="store_true", help="write nothing; fail on drift")
    args = parser.parse_args(argv)
    try:
        outcome = generate_integration(args.name, ROOT, dry_run=args.check)
    except IntegrationNameError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in outcome.lines():
        print(line)
    if args.check:
        return 1 if outcome.written else 0
    # api.md lists every setting of .env.example: regenerate it with the new ones.
    subprocess.run([sys.executable, "-m", "backend.app.docs.generate"], cwd=ROOT, check=True)
    print("wrote      backend/app/docs/openapi.json, backend/app/docs/api.md")
    print(f"next: make lint typecheck conform; .venv/bin/pytest -k {args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
