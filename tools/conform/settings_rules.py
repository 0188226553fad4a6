"""Rules on integrations and settings: the folder layout, and every setting in .env.example."""

import ast
import inspect
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

from pydantic_settings import BaseSettings

from tools.conform.problems import Problem
from tools.conform.project import Project

VARIABLE = re.compile(r"^([A-Z][A-Z0-9_]*)=")


def check(project: Project, settings_class: type[BaseSettings]) -> Iterator[Problem]:
    """Check the integrations folder and .env.example against `settings_class`."""
    documented = env_example_variables(project.root / ".env.example")
    yield from check_integrations(project, settings_class, documented)
    yield from check_env_example(project, settings_class, documented)


def env_variable(settings_class: type[BaseSettings], field: str) -> str:
    """The environment variable a Settings field is read from."""
    info = settings_class.model_fields[field]
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    prefix = str(settings_class.model_config.get("env_prefix") or "")
    return (alias or f"{prefix}{field}").upper()


def env_example_variables(path: Path) -> dict[str, int]:
    """The variables .env.example sets, with their line numbers."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    found = {}
    for number, line in enumerate(lines, start=1):
        match = VARIABLE.match(line)
        if match:
            found[match.group(1)] = number
    return found


def check_integrations(
    project: Project, settings_class: type[BaseSettings], documented: dict[str, int]
) -> Iterator[Problem]:
    """One folder per integration with `<name>/<name>.py`; what it reads from Settings exists."""
    folder = project.app_dir / "integrations"
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix == ".py" and entry.name != "__init__.py":
            yield Problem(
                project.rel(entry),
                1,
                "integration-layout",
                f"integration module {entry.name} is not in a folder of its own",
                f"move it to integrations/{entry.stem}/{entry.stem}.py (+ an __init__.py)",
            )
        elif entry.is_dir() and entry.name != "__pycache__":
            if not (entry / f"{entry.name}.py").is_file():
                yield Problem(
                    project.rel(entry),
                    1,
                    "integration-layout",
                    f"integration {entry.name} has no primary module {entry.name}.py",
                    f"put its interface, client, fake and factory in {entry.name}/{entry.name}.py",
                )
            for source in project.python_files(entry):
                for node in ast.walk(source.tree):
                    if isinstance(node, ast.Attribute) and _reads_settings(node):
                        problem = _setting_problem(node.attr, settings_class, documented)
                        if problem:
                            yield Problem(source.rel, node.lineno, "integration-setting", *problem)


def _reads_settings(node: ast.Attribute) -> bool:
    """`settings.x`, `self.settings.x`, `self._settings.x`: a read of a setting."""
    holder = node.value
    name = holder.attr if isinstance(holder, ast.Attribute) else getattr(holder, "id", "")
    return "settings" in name.lower() and not node.attr.startswith("_")


def _setting_problem(
    attribute: str, settings_class: type[BaseSettings], documented: dict[str, int]
) -> tuple[str, str] | None:
    if attribute in settings_class.model_fields:
        variable = env_variable(settings_class, attribute)
        if variable in documented:
            return None
        return (
            f"reads setting {attribute}, whose {variable} is not in .env.example",
            f"add `# what it is` and `{variable}=` to .env.example",
        )
    if hasattr(settings_class, attribute):  # a property or method of Settings
        return None
    return (
        f"reads settings.{attribute}, which is not a field of Settings",
        f"add `{attribute}` to Settings in core/config.py and document it in .env.example",
    )


def check_env_example(
    project: Project, settings_class: type[BaseSettings], documented: dict[str, int]
) -> Iterator[Problem]:
    """Every field is in .env.example with a comment above it; nothing else is."""
    env_example = project.root / ".env.example"
    variables = {env_variable(settings_class, name): name for name in settings_class.model_fields}
    lines = _field_lines(settings_class)
    config = project.rel(inspect.getsourcefile(settings_class) or "?")
    for variable, field in variables.items():
        if variable not in documented:
            yield Problem(
                config,
                lines.get(field, 1),
                "setting-documented",
                f"setting {field} ({variable}) is not in .env.example",
                f"add a comment line and `{variable}=<default>` to .env.example",
            )
    text = env_example.read_text(encoding="utf-8").splitlines() if env_example.is_file() else []
    for variable, number in documented.items():
        if variable not in variables:
            yield Problem(
                project.rel(env_example),
                number,
                "setting-documented",
                f"{variable} is not a field of Settings",
                "remove it, or add the field to Settings in core/config.py",
            )
        elif not _has_comment(text, number - 1):
            yield Problem(
                project.rel(env_example),
                number,
                "setting-documented",
                f"{variable} has no comment above it",
                "say what it is, its unit and its values in a `#` line above it",
            )


def _has_comment(lines: list[str], index: int) -> bool:
    """Whether a `#` line sits above line `index`, over other variables of its group."""
    above = index - 1
    while above >= 0 and VARIABLE.match(lines[above]):
        above -= 1
    return above >= 0 and lines[above].startswith("#")


def _field_lines(settings_class: type[BaseSettings]) -> dict[str, int]:
    """The line of each annotated field in the class body."""
    source_lines, start = inspect.getsourcelines(settings_class)
    tree = ast.parse(textwrap.dedent("".join(source_lines)))
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = start + node.lineno - 1
    return found
