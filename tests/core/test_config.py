"""Production mode refuses unsafe settings; development works with no .env at all."""

import pytest
from pydantic import ValidationError

from backend.app.core.config import DEV_SECRET_KEY, Settings

STRONG_KEY = "k" * 48
POSTGRES = "postgresql+asyncpg://app:app@db:5432/app"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_development_needs_no_configuration() -> None:
    dev = settings()
    assert dev.database_url.startswith("sqlite+aiosqlite:///")
    assert dev.secret_key.get_secret_value() == DEV_SECRET_KEY


def test_production_accepts_safe_settings() -> None:
    prod = settings(
        environment="production",
        secret_key=STRONG_KEY,
        database_url=POSTGRES,
        billing_provider="stripe",  # the fake checkout is refused in production
        stripe_secret_key="sk_live_x",
        stripe_webhook_secret="whsec_x",
    )
    assert prod.is_production


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"secret_key": DEV_SECRET_KEY}, "SECRET_KEY"),
        ({"secret_key": "short"}, "SECRET_KEY"),
        ({"database_url": "sqlite+aiosqlite:///./data/app.db"}, "SQLite"),
        ({"debug": True}, "DEBUG"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], complaint: str) -> None:
    values = {"environment": "production", "secret_key": STRONG_KEY, "database_url": POSTGRES}
    with pytest.raises(ValidationError, match=complaint):
        settings(**{**values, **overrides})


def test_production_refuses_a_missing_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("DATABASE_URL", POSTGRES)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_cors_origins_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "http://a.example, https://b.example")
    assert Settings(_env_file=None).cors_origins == [  # type: ignore[call-arg]
        "http://a.example",
        "https://b.example",
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"port": 9000}, "http://127.0.0.1:9000"),
        ({"host": "0.0.0.0", "port": 8080}, "http://127.0.0.1:8080"),
        (
            {"host": "0.0.0.0", "public_base_url": "https://api.example.com"},
            "https://api.example.com",
        ),
    ],
)
def test_public_base_url_defaults_to_this_process_address(
    values: dict[str, object], expected: str
) -> None:
    assert settings(**values).public_base_url == expected
