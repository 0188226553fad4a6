"""Source rules of the conformance checker: each broken module fails at its file:line.

Every case writes one module into an empty temporary checkout and runs the source rules on
it. A line marked `# expect: <rule>` must be reported with that rule, and no other line of
the module may be reported with it; `clean` cases must not be reported at all.
"""

import re
from pathlib import Path

import pytest

from tools.conform.problems import Problem
from tools.conform.project import Project
from tools.conform.runner import ROOT, check_sources

DOC = '"""A module."""\n\n'

BROKEN = {
    "bare-except": (
        "backend/app/routers/things.py",
        DOC + "def f() -> None:\n"
        '    """Do it."""\n'
        "    try:\n"
        "        pass\n"
        "    except:  # expect: bare-except\n"
        "        pass\n",
    ),
    "blind-except": (
        "backend/app/crud/things.py",
        DOC + "def f() -> int:\n"
        '    """Do it."""\n'
        "    try:\n"
        "        return 1\n"
        "    except (ValueError, Exception) as exc:  # expect: blind-except\n"
        "        raise RuntimeError from exc\n"
        "    try:\n"
        "        return 2\n"
        "    except Exception:  # noqa: BLE001  # expect: blind-except\n"
        "        return 3\n",
    ),
    "env-read": (
        "backend/app/routers/things.py",
        DOC + "import os\n"
        "from os import getenv  # expect: env-read\n\n"
        'KEY = os.environ["X"]  # expect: env-read\n'
        'OTHER = os.getenv("Y")  # expect: env-read\n',
    ),
    "secret-literal": (
        "backend/app/integrations/mailer/mailer.py",
        DOC + 'STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"  # expect: secret-literal\n'
        'api_token = "3b1f0c9a77d2"  # expect: secret-literal\n'
        'HEADERS = {"password": "hunter2hunter2"}  # expect: secret-literal\n\n\n'
        "def connect(\n"
        '    client_secret: str = "abc123",  # expect: secret-literal\n'
        ") -> None:\n"
        '    """Connect."""\n'
        '    sid = "AC' + "0123456789abcdef" * 2 + '"  # expect: secret-literal\n'
        '    DEV_SECRET_KEY = "only exempt in core/config.py"  # expect: secret-literal\n',
    ),
    "docstring": (
        "backend/app/crud/things.py",
        "import os  # expect: docstring\n\n\n"
        "class Thing:  # expect: docstring\n"
        "    def size(self) -> int:  # expect: docstring\n"
        "        return 1\n\n"
        "    def _hidden(self) -> int:\n"
        "        return 2\n\n\n"
        "async def get_thing() -> None:  # expect: docstring\n"
        "    def inner() -> None:\n"
        "        pass\n",
    ),
    "docstring-raises": (
        "backend/app/crud/things.py",
        DOC + "from backend.app.core import errors\n\n\n"
        "def get_thing(thing_id: int) -> None:\n"
        '    """Return a thing.\n\n'
        "    Raises:\n"
        "        NotFoundError: no such thing.\n"
        '    """\n'
        "    if thing_id < 0:\n"
        '        raise ConflictError("no")  # expect: docstring-raises\n'
        "    if thing_id == 0:\n"
        "        raise errors.NotFoundError\n"
        "    if thing_id == 1:\n"
        "        raise errors.ForbiddenError  # expect: docstring-raises\n",
    ),
    "module-size": (
        "backend/app/crud/big.py",
        '"""A module far too long."""  # expect: module-size\n' + "X = 1\n" * 599,
    ),
}

CLEAN = {
    "a re-raising catch-all": (
        "backend/app/core/database.py",
        DOC + "def f() -> None:\n"
        '    """Do it."""\n'
        "    try:\n"
        "        pass\n"
        "    except Exception:\n"
        "        print('rolled back')\n"
        "        raise\n"
        "    try:\n"
        "        pass\n"
        "    except BaseException as exc:\n"
        "        raise exc\n",
    ),
    "the last-resort middleware": (
        "backend/app/core/middleware.py",
        DOC + "def f() -> None:\n"
        '    """Answer 500."""\n'
        "    try:\n"
        "        pass\n"
        "    except Exception:\n"
        "        print('500')\n",
    ),
    "settings reading the environment and its development defaults": (
        "backend/app/core/config.py",
        DOC + "import os\n\n"
        'DEV_SECRET_KEY = "dev-insecure-secret-key"\n'
        'DEV_STRIPE_WEBHOOK_SECRET = "whsec_dev_insecure_fake_checkout"\n'
        'HOME = os.environ.get("HOME")\n',
    ),
    "names that only mention a secret, examples and placeholders": (
        "backend/app/schemas/things.py",
        DOC + 'TOKEN_URL = "/api/v1/auth/token"\n'
        'token_type = "bearer"\n'
        'password = ""\n'
        '_THING_EXAMPLE = {"password": "correct horse battery"}\n'
        'CONFIG = {"json_schema_extra": {"examples": [{"access_token": "eyJhbGciOi..."}]}}\n'
        'HINT = "set STRIPE_SECRET_KEY=sk_test_... in .env"\n',
    ),
    "private and exempt functions, documented raises": (
        "backend/app/crud/things.py",
        DOC + "from typing import overload, override\n\n\n"
        "def _helper() -> None:\n"
        "    raise ValueError\n\n\n"
        "class Thing:\n"
        '    """A thing."""\n\n'
        "    def __init__(self) -> None:\n"
        "        raise ValueError\n\n"
        "    @override\n"
        "    def __repr__(self) -> str:\n"
        "        return 'thing'\n\n\n"
        "def check(value: int) -> None:\n"
        '    """Check a value.\n\n'
        "    Raises:\n"
        "        ValueError: when negative.\n"
        '    """\n'
        "    try:\n"
        "        pass\n"
        "    except KeyError:\n"
        "        raise\n"
        "    if value < 0:\n"
        "        raise ValueError\n"
        "    raise NotImplementedError\n",
    ),
    "a catch-all that says why it is kept": (
        "backend/app/core/logging.py",
        DOC + "def render(value: object) -> str:\n"
        '    """Render a value for a log line."""\n'
        "    try:\n"
        "        return str(value)\n"
        "    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the line\n"
        "        return '?'\n",
    ),
    "raises documented by the class or by the interface the docstring refers to": (
        "backend/app/integrations/mailer/mailer.py",
        DOC + "class Mailer:\n"
        '    """Sends mail."""\n\n'
        "    def send(self) -> None:\n"
        '        """Send.\n\n'
        "        Raises:\n"
        "            MailerRefusedError: the provider refused.\n"
        '        """\n\n\n'
        "class SmtpMailer:\n"
        '    """Sends through SMTP."""\n\n'
        "    def send(self) -> None:\n"
        '        """Send (see `Mailer.send`)."""\n'
        "        raise MailerRefusedError\n\n\n"
        "class NoMailer:\n"
        '    """Mail is off: every call raises `MailerOffError`."""\n\n'
        "    def send(self) -> None:\n"
        '        """Refuse."""\n'
        "        raise MailerOffError\n",
    ),
    "a module of exactly 500 lines of code": ("backend/app/crud/long.py", DOC + "X = 1\n" * 500),
    "a long module whose docstrings and comments are not code": (
        "backend/app/crud/documented.py",
        DOC + ("# why\n\n" + "def f() -> None:\n" + '    """Do.\n\n    More.\n    """\n') * 120,
    ),
}


def source_problems(tmp_path: Path, rel: str, text: str) -> list[Problem]:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return [p for p in check_sources(Project(tmp_path)) if p.file == rel]


def expected_lines(text: str, rule: str) -> list[int]:
    return [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if re.search(rf"# expect: {re.escape(rule)}$", line)
    ]


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_a_broken_module_fails_at_each_marked_line(tmp_path, rule):
    rel, text = BROKEN[rule]
    problems = source_problems(tmp_path, rel, text)
    expected = expected_lines(text, rule)
    assert expected, "the case marks no line"
    assert sorted(p.line for p in problems if p.rule == rule) == expected, problems
    assert all(p.fix for p in problems)


@pytest.mark.parametrize("case", sorted(CLEAN))
def test_a_conforming_module_passes(tmp_path, case):
    rel, text = CLEAN[case]
    assert source_problems(tmp_path, rel, text) == []


def test_an_integration_outside_its_folder_or_without_its_primary_module_fails(tmp_path):
    integrations = tmp_path / "backend/app/integrations"
    (integrations / "mailer").mkdir(parents=True)
    (integrations / "mailer/client.py").write_text('"""The mailer client."""\n')
    (integrations / "pager.py").write_text('"""A pager client."""\n')
    (integrations / "twilio").mkdir()
    (integrations / "twilio/twilio.py").write_text('"""Twilio."""\n')
    problems = [p for p in check_sources(Project(tmp_path)) if p.rule == "integration-layout"]
    assert [(p.file, p.line) for p in problems] == [
        ("backend/app/integrations/mailer", 1),
        ("backend/app/integrations/pager.py", 1),
    ]


def test_what_an_integration_reads_from_settings_must_be_a_documented_field(tmp_path):
    env_example = (ROOT / ".env.example").read_text()
    (tmp_path / ".env.example").write_text(env_example.replace("SMS_DAILY_LIMIT=200\n", ""))
    module = tmp_path / "backend/app/integrations/mailer/mailer.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        DOC + "def create_mailer(settings, other) -> None:\n"
        '    """Build it."""\n'
        "    print(settings.mailer_api_key)\n"
        "    print(settings.sms_daily_limit, settings.twilio_timeout_seconds)\n"
        "    print(settings.is_production, other.mailer_api_key)\n"
        "    print(settings.stripe_webhook_secret.get_secret_value())\n"
    )
    problems = [p for p in check_sources(Project(tmp_path)) if p.rule == "integration-setting"]
    assert [(p.file, p.line) for p in problems] == [
        ("backend/app/integrations/mailer/mailer.py", 5),
        ("backend/app/integrations/mailer/mailer.py", 6),
    ]
    assert "mailer_api_key" in problems[0].message
    assert "SMS_DAILY_LIMIT" in problems[1].message


def test_every_setting_is_in_env_example_with_a_comment_and_nothing_else(tmp_path):
    env_example = (ROOT / ".env.example").read_text()
    env_example = env_example.replace("SMS_DAILY_LIMIT=200\n", "")
    region_comment = "# Region (ISO 3166 alpha-2) used to read phone numbers typed without a"
    assert region_comment in env_example
    env_example = re.sub(re.escape(region_comment) + ".*\n", "\n", env_example)
    (tmp_path / ".env.example").write_text(env_example + "# Not a setting.\nBOGUS=1\n")
    problems = [p for p in check_sources(Project(tmp_path)) if p.rule == "setting-documented"]
    lines = env_example.splitlines()
    config_line = next(
        number
        for number, line in enumerate((ROOT / "backend/app/core/config.py").open(), start=1)
        if line.strip().startswith("sms_daily_limit:")
    )
    assert sorted((p.file, p.line) for p in problems) == sorted(
        [
            (".env.example", lines.index("DEFAULT_PHONE_REGION=US") + 1),
            (".env.example", len(lines) + 2),
            ((ROOT / "backend/app/core/config.py").as_posix(), config_line),  # outside tmp
        ]
    )
