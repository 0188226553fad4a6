"""Application settings, read once from the environment (and an optional `.env` file).

Every variable is documented in `.env.example`. Development mode works with no `.env`
at all; production mode (`ENVIRONMENT=production`) refuses unsafe values at start-up.
"""

from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789"  # noqa: S105 - dev only, refused in prod
MIN_SECRET_KEY_LENGTH = 32
DEV_STRIPE_WEBHOOK_SECRET = "whsec_dev_insecure_fake_checkout_only"  # noqa: S105 - refused in prod
STRIPE_MAX_BACKOFF_SECONDS = 5.0  # longest wait between two tries of a Stripe call
# Names the lead ids of a development database in the fake EHR; refused with EHR_PROVIDER=fhir.
DEV_EHR_IDENTIFIER_SYSTEM = "urn:lead-tracker:dev:lead-id"


class Environment(StrEnum):
    """Where the app runs; production turns on the safety checks."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SmsProvider(StrEnum):
    """Who sends texts: Twilio, or the zero-setup console provider that only logs them."""

    CONSOLE = "console"
    TWILIO = "twilio"


class BillingProvider(StrEnum):
    """Who runs checkout: Stripe, or the zero-setup fake checkout page (not in production)."""

    FAKE = "fake"
    STRIPE = "stripe"


class EhrProvider(StrEnum):
    """Which EHR patients go to: a FHIR server, an in-process fake, or none (off)."""

    NONE = "none"
    FAKE = "fake"
    FHIR = "fhir"


class FhirSigningAlgorithm(StrEnum):
    """How the SMART client assertion is signed (the two SMART Backend Services requires)."""

    RS384 = "RS384"
    ES384 = "ES384"


class Settings(BaseSettings):
    """All configuration of the app. Names match the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Environment = Environment.DEVELOPMENT
    debug: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    # API processes `serve` starts (uvicorn workers); `--workers` wins. The convention
    # uvicorn and gunicorn read. Over 1 with metrics on needs PROMETHEUS_MULTIPROC_DIR.
    web_concurrency: int = Field(default=1, ge=1)
    log_level: str = "INFO"

    database_url: str = "sqlite+aiosqlite:///./data/app.db"
    # Kept open once opened; overflow connections are closed on return (a connect per use).
    database_pool_size: int = Field(default=20, ge=1)
    database_max_overflow: int = Field(default=0, ge=0)
    # Every wait on the database is bounded, so an outage or a stall answers 503 in seconds:
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0)  # open a connection
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0)  # wait for a free one
    # One statement (PostgreSQL: server-side, plus a client-side bound 1 s later for a
    # silent network); on SQLite, the wait for the write lock.
    database_statement_timeout_seconds: float = Field(default=5.0, gt=0)

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
    # Strict-Transport-Security max-age, sent in production only (0 makes browsers forget it).
    hsts_max_age_seconds: int = Field(default=365 * 24 * 3600, ge=0)

    # --- SMS (Twilio). `console` logs texts instead of sending them (zero setup). ---
    sms_provider: SmsProvider = SmsProvider.CONSOLE
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None  # also checks webhook signatures
    twilio_from_number: str | None = None  # or a Messaging Service:
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_timeout_seconds: float = Field(default=10.0, gt=0)  # per HTTP call, enforced
    twilio_max_retries: int = Field(default=2, ge=0, le=10)  # in-client, 429/connect only
    twilio_max_retry_wait_seconds: float = Field(default=10.0, gt=0)
    # The URL Twilio calls us at (signatures and StatusCallback); no trailing slash.
    public_base_url: str = ""  # empty: http://HOST:PORT of this process (see below)
    sms_daily_limit: int = Field(default=200, ge=0)  # outbound texts per user per 24 h
    sms_max_attempts: int = Field(default=5, ge=1)  # worker tries before `failed`
    sms_retry_base_seconds: float = Field(default=10.0, gt=0)  # worker backoff: base * 2^n
    sms_retry_max_seconds: float = Field(default=600.0, gt=0)

    # --- Worker (python -m backend.app.worker) ---
    # Run the send loop inside the API process too; unset = on with SQLite, off otherwise.
    worker_in_app: bool | None = None
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_concurrency: int = Field(default=50, ge=1, le=500)  # rows claimed & sent per round
    worker_lease_seconds: float = Field(default=120.0, gt=0)
    # Every delivery but SMS (worker/outbox_delivery.py): tries per row, then `failed`, and
    # the backoff between them, min(MAX, BASE * 2^(try-1)) with jitter.
    worker_max_attempts: int = Field(default=5, ge=1)
    worker_retry_base_seconds: float = Field(default=10.0, gt=0)
    worker_retry_max_seconds: float = Field(default=600.0, gt=0)

    # --- Audit trail (core/audit.py). The worker deletes events older than this; 0 keeps all.
    audit_retention_days: int = Field(default=365, ge=0, le=36500)

    # --- Billing (Stripe Checkout). `fake` serves a local checkout page (zero setup). ---
    billing_provider: BillingProvider = BillingProvider.FAKE
    stripe_secret_key: SecretStr | None = None  # sk_test_... / sk_live_...
    # Verifies Stripe-Signature on /api/v1/webhooks/stripe; the fake signs with it too.
    stripe_webhook_secret: SecretStr = SecretStr(DEV_STRIPE_WEBHOOK_SECRET)
    stripe_api_base_url: str = "https://api.stripe.com"  # tests: a local stand-in
    stripe_timeout_seconds: float = Field(default=10.0, gt=0)  # per HTTP call, enforced
    stripe_max_retries: int = Field(default=2, ge=0, le=5)  # transient failures only
    # After this many failed creates in a row, answer 503 at once for STRIPE_CIRCUIT_OPEN_SECONDS.
    stripe_circuit_failures: int = Field(default=5, ge=1)
    stripe_circuit_open_seconds: float = Field(default=30.0, gt=0)
    # Where Stripe sends the payer after checkout; {CHECKOUT_SESSION_ID} is filled in.
    checkout_success_url: str = (
        "http://127.0.0.1:3000/payments/success?session_id={CHECKOUT_SESSION_ID}"
    )
    checkout_cancel_url: str = "http://127.0.0.1:3000/payments/canceled"

    # --- Operations: metrics, traces, error reports (README "Operating") ---
    metrics_enabled: bool = True  # count requests etc. and serve GET /metrics
    # Bearer token GET /metrics requires when set. Production serves /metrics only with one.
    metrics_token: SecretStr | None = None
    # A directory of this host for the metrics of several API processes (prometheus-client's
    # multiprocess mode); read from the process environment by the library itself.
    prometheus_multiproc_dir: str | None = None
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)  # the worker's own
    otel_exporter_otlp_endpoint: str | None = None  # OTLP/HTTP collector; unset: no tracing
    otel_service_name: str | None = None  # unset: lead-tracker-api / lead-tracker-worker
    sentry_dsn: SecretStr | None = None  # unset: no error reports

    # --- EHR (FHIR R4). Unset: `fake` (in-process) outside production, `none` in it. ---
    ehr_provider: EhrProvider = EhrProvider.FAKE  # see _default_ehr_provider
    # The system URI of the identifier that carries our lead id on each Patient.
    ehr_identifier_system: str = DEV_EHR_IDENTIFIER_SYSTEM
    fhir_base_url: str = ""  # e.g. https://fhir.example.com/r4 (no trailing slash needed)
    fhir_access_token: SecretStr | None = None  # a static bearer token, instead of SMART
    fhir_client_id: str | None = None  # SMART Backend Services: the registered client id
    fhir_token_url: str = ""  # empty: read from [base]/.well-known/smart-configuration
    fhir_private_key: SecretStr | None = None  # the client's private key, PEM
    fhir_private_key_path: str | None = None  # ...or a path to the PEM file
    fhir_key_id: str | None = None  # `kid` of that key in the JWKS registered with the EHR
    fhir_signing_algorithm: FhirSigningAlgorithm = FhirSigningAlgorithm.RS384
    fhir_scopes: str = "system/Patient.rs system/Patient.c system/Patient.u"
    fhir_timeout_seconds: float = Field(default=10.0, gt=0)  # per HTTP call, enforced
    fhir_max_retries: int = Field(default=2, ge=0, le=5)  # transient failures, safe calls
    fhir_max_retry_wait_seconds: float = Field(default=5.0, gt=0)  # also caps Retry-After
    fhir_max_search_pages: int = Field(default=10, ge=1)  # `next` links followed per search
    fhir_circuit_failures: int = Field(default=5, ge=1)
    fhir_circuit_open_seconds: float = Field(default=30.0, gt=0)

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

    @field_validator(
        "worker_in_app",
        "metrics_token",
        "prometheus_multiproc_dir",
        "worker_metrics_port",
        "otel_exporter_otlp_endpoint",
        "otel_service_name",
        "sentry_dsn",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """Read an empty `NAME=` (as .env.example has them) as unset."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_sms(self) -> Self:
        """Require Twilio credentials for the Twilio provider and a lease longer than a send.

        Raises:
            ValueError: a Twilio setting is missing, or WORKER_LEASE_SECONDS is too short.
        """
        if self.sms_provider is SmsProvider.TWILIO and not (
            self.twilio_account_sid
            and self.twilio_auth_token
            and self.twilio_auth_token.get_secret_value()
            and (self.twilio_from_number or self.twilio_messaging_service_sid)
        ):
            raise ValueError(
                "SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID."
            )
        if self.worker_lease_seconds <= 2 * self.sms_send_budget_seconds:
            raise ValueError(
                f"WORKER_LEASE_SECONDS must exceed the longest possible lookup plus send "
                f"({2 * self.sms_send_budget_seconds:g} s with these TWILIO_* settings)."
            )
        return self

    @property
    def sms_send_budget_seconds(self) -> float:
        """The longest one send may take: every try timing out, with the longest waits."""
        tries = self.twilio_max_retries + 1
        return (
            tries * self.twilio_timeout_seconds + (tries - 1) * self.twilio_max_retry_wait_seconds
        )

    @property
    def run_worker_in_app(self) -> bool:
        """Whether the API process runs the SMS send loop (default: with SQLite only)."""
        return self.is_sqlite if self.worker_in_app is None else self.worker_in_app

    @model_validator(mode="before")
    @classmethod
    def _default_public_base_url(cls, data: object) -> object:
        """Without PUBLIC_BASE_URL, links and signatures use this process's own HOST:PORT."""
        if isinstance(data, dict) and not data.get("public_base_url"):
            host = str(data.get("host") or "127.0.0.1")
            host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104 - compared
            data = {**data, "public_base_url": f"http://{host}:{data.get('port') or 8000}"}
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

    @field_validator("stripe_webhook_secret", mode="before")
    @classmethod
    def _empty_webhook_secret_is_unset(cls, value: object) -> object:
        """Read `STRIPE_WEBHOOK_SECRET=` (empty, as in .env.example) as not set."""
        return DEV_STRIPE_WEBHOOK_SECRET if value in ("", None) else value

    @model_validator(mode="after")
    def _check_billing(self) -> Self:
        """Require a Stripe key for the Stripe provider; refuse the fake one in production.

        Raises:
            ValueError: STRIPE_SECRET_KEY is missing, or production uses the fake provider
                or the development webhook secret.
        """
        if self.billing_provider is BillingProvider.STRIPE and not (
            self.stripe_secret_key and self.stripe_secret_key.get_secret_value()
        ):
            raise ValueError("BILLING_PROVIDER=stripe needs STRIPE_SECRET_KEY.")
        if self.environment is not Environment.PRODUCTION:
            return self
        if self.billing_provider is BillingProvider.FAKE:
            raise ValueError("BILLING_PROVIDER=fake is for development; use stripe in production.")
        if self.stripe_webhook_secret.get_secret_value() == DEV_STRIPE_WEBHOOK_SECRET:
            raise ValueError("STRIPE_WEBHOOK_SECRET must be set (whsec_...) in production.")
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_ehr_provider(cls, data: object) -> object:
        """Without EHR_PROVIDER, use the in-process fake, except in production: none."""
        if isinstance(data, dict) and not data.get("ehr_provider"):
            production = str(data.get("environment") or "") == Environment.PRODUCTION
            provider = EhrProvider.NONE if production else EhrProvider.FAKE
            data = {**data, "ehr_provider": provider}
        return data

    @model_validator(mode="after")
    def _check_ehr(self) -> Self:
        """Require what EHR_PROVIDER=fhir needs; refuse the fake EHR in production.

        Raises:
            ValueError: a FHIR setting is missing or contradicts another, or production
                uses the fake provider.
        """
        if self.ehr_provider is EhrProvider.FAKE and self.is_production:
            raise ValueError("EHR_PROVIDER=fake is for development; use fhir or none.")
        if self.ehr_provider is not EhrProvider.FHIR:
            return self
        if not self.fhir_base_url:
            raise ValueError("EHR_PROVIDER=fhir needs FHIR_BASE_URL.")
        if self.ehr_identifier_system == DEV_EHR_IDENTIFIER_SYSTEM:
            raise ValueError(
                "EHR_PROVIDER=fhir needs EHR_IDENTIFIER_SYSTEM: a URI of your own that names "
                "this deployment's lead ids, e.g. https://crm.example-clinic.com/ids/lead."
            )
        if self.fhir_access_token and self.fhir_access_token.get_secret_value():
            return self
        if self.fhir_private_key and self.fhir_private_key_path:
            raise ValueError("Set FHIR_PRIVATE_KEY or FHIR_PRIVATE_KEY_PATH, not both.")
        if not (
            self.fhir_client_id
            and self.fhir_key_id
            and (self.fhir_private_key_path or self.fhir_private_key)
        ):
            raise ValueError(
                "EHR_PROVIDER=fhir needs FHIR_ACCESS_TOKEN, or FHIR_CLIENT_ID, FHIR_KEY_ID and "
                "FHIR_PRIVATE_KEY (or FHIR_PRIVATE_KEY_PATH) for SMART Backend Services."
            )
        return self

    @property
    def metrics_served(self) -> bool:
        """Whether to count and serve metrics: production needs METRICS_TOKEN for it."""
        return self.metrics_enabled and (not self.is_production or self.metrics_token is not None)

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
