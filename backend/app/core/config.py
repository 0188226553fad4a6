"""Application settings, read once from the environment (and an optional `.env` file).

Every variable is documented in `.env.example`. Development mode works with no `.env`
at all; production mode (`ENVIRONMENT=production`) refuses unsafe values at start-up.
"""

from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789"  # noqa: S105 - dev only, refused in prod
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    """Where the app runs; production turns on the safety checks."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """All configuration of the app. Names match the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Environment = Environment.DEVELOPMENT
    debug: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    database_url: str = "sqlite+aiosqlite:///./data/app.db"
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)

    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    access_token_expire_minutes: int = Field(default=60, ge=1)
    registration_open: bool = True
    first_admin_email: str | None = None
    first_admin_password: SecretStr | None = None
    login_max_failures: int = Field(default=10, ge=1)
    login_window_seconds: int = Field(default=60, ge=1)
    redis_url: str | None = None

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_phone_region: str = "US"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _split_cors_origins(cls, data: object) -> object:
        """Accept CORS_ORIGINS as a comma-separated string."""
        if isinstance(data, dict):
            raw = data.get("cors_origins", data.get("CORS_ORIGINS"))
            if isinstance(raw, str):
                data = {k: v for k, v in data.items() if k.lower() != "cors_origins"}
                data["cors_origins"] = [o.strip() for o in raw.split(",") if o.strip()]
        return data

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        """Refuse to run production with a weak secret, SQLite or debug on.

        Raises:
            ValueError: when `ENVIRONMENT=production` and a setting is unsafe.
        """
        if self.environment is not Environment.PRODUCTION:
            return self
        key = self.secret_key.get_secret_value()
        if key == DEV_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters in production."
            )
        if self.is_sqlite:
            raise ValueError("DATABASE_URL must point at PostgreSQL in production, not SQLite.")
        if self.debug:
            raise ValueError("DEBUG must be off in production.")
        return self

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite default."""
        return self.database_url.startswith("sqlite")

    @property
    def is_production(self) -> bool:
        """Whether the app runs in production mode."""
        return self.environment is Environment.PRODUCTION


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment once."""
    return Settings()
