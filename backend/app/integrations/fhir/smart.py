"""Access tokens for the FHIR client: SMART Backend Services, or a static bearer token.

SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html) is the
OAuth 2.0 client-credentials grant where the client proves who it is with a JWT signed by
its own private key (`private_key_jwt`) instead of a shared secret:

    POST <token URL>  grant_type=client_credentials & scope=<FHIR_SCOPES>
        & client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
        & client_assertion=<JWT: iss = sub = client id, aud = token URL, exp <= 5 min, jti>
    -> {"access_token", "token_type": "bearer", "expires_in", "scope"}

The EHR knows the matching public key (a JWKS registered with the client id); the JWT's `kid`
header names it. `python -m backend.app.integrations.fhir` prints that JWKS for the
configured key (FHIR_PRIVATE_KEY[_PATH], FHIR_KEY_ID, FHIR_SIGNING_ALGORITHM): the public half
only. The token URL is FHIR_TOKEN_URL, or `token_endpoint` of
`[base]/.well-known/smart-configuration`. The access token is cached until shortly before it
expires; callers arriving while it is being fetched wait for that one fetch and share its
outcome, a token or an error (one token request, not one per caller).
A token request is safe to repeat (every try signs a new assertion with a new `jti`).
"""

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.app.core.config import FhirSigningAlgorithm, get_settings
from backend.app.core.errors import EhrAuthError, EhrError

logger = logging.getLogger("app.integrations.fhir")

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 240  # SMART: at most 5 minutes; a margin for clock skew
REFRESH_MARGIN_SECONDS = 30.0  # fetch a new token this long before the old one expires
DEFAULT_EXPIRES_IN = 300  # SMART requires `expires_in`; assume 5 minutes if it is missing
MIN_RSA_BITS = 2048

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
# Sends (method, url, form) with the client's timeouts and retries; `form` is called for
# every try, so each try of a token request signs a new assertion (a new `jti`).
Sender = Callable[[str, str, Callable[[], dict[str, str]] | None], Awaitable[httpx.Response]]


class AccessTokenSource(Protocol):
    """Where the FHIR client gets its bearer token."""

    async def token(self, send: Sender) -> str:
        """Return a valid access token, fetching one with `send` if needed.

        Raises:
            EhrAuthError: the token endpoint refused our credentials.
            EhrError: the token endpoint failed (`EhrUnavailableError` if transient).
        """
        ...

    def invalidate(self, token: str) -> bool:
        """Forget `token` (the EHR refused it); return whether a new one can be fetched."""
        ...


class StaticToken:
    """A bearer token issued out of band (FHIR_ACCESS_TOKEN), used as it is."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(***)"

    async def token(self, send: Sender) -> str:
        """Return the configured token."""
        return self._token

    def invalidate(self, token: str) -> bool:
        """A static token cannot be renewed."""
        return False


class _TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: float | None = Field(default=None, gt=0)


class _SmartConfiguration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    token_endpoint: str = Field(min_length=1)


class SmartBackendAuth:
    """SMART Backend Services: signed client assertions exchanged for cached access tokens."""

    def __init__(
        self,
        *,
        client_id: str,
        private_key: SigningKey,
        key_id: str,
        algorithm: FhirSigningAlgorithm,
        scope: str,
        fhir_base_url: str,
        token_url: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_key(private_key, algorithm)
        self._client_id = client_id
        self._key = private_key
        self._key_id = key_id
        self._algorithm = algorithm
        self._scope = scope
        self._discovery_url = f"{fhir_base_url.rstrip('/')}/.well-known/smart-configuration"
        self._token_url = token_url or None
        self._clock = clock
        self._pending: asyncio.Task[str] | None = None
        self._access_token: str | None = None
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self._client_id!r}, key_id={self._key_id!r})"

    async def token(self, send: Sender) -> str:
        """Return the cached token, or fetch one; concurrent callers share one fetch.

        The fetch runs as its own task, shielded: a caller that is cancelled (its client
        went away) does not cancel it for the others.
        """
        cached = self._cached()
        if cached is not None:
            return cached
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._fetch(send))
            self._pending.add_done_callback(_retrieve_outcome)
        return await asyncio.shield(self._pending)

    def invalidate(self, token: str) -> bool:
        """Drop `token` if it is still the cached one; a new one is fetched on next use."""
        if token == self._access_token:
            self._access_token = None
        return True

    def client_assertion(self, token_url: str) -> str:
        """Sign a new client assertion for `token_url` (a fresh `jti` every call)."""
        now = int(self._clock())
        claims = {
            "iss": self._client_id,
            "sub": self._client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
            "jti": secrets.token_urlsafe(24),
        }
        headers = {"kid": self._key_id, "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm=self._algorithm.value, headers=headers)

    def _cached(self) -> str | None:
        if self._access_token is not None and self._clock() < self._refresh_at:
            return self._access_token
        return None

    async def _fetch(self, send: Sender) -> str:
        token_url = await self._token_endpoint(send)
        started = self._clock()
        response = await send("POST", token_url, partial(self._token_form, token_url))
        if response.status_code != 200:
            raise _token_error(response)
        try:
            answer = _TokenResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise EhrError("The EHR's token endpoint answered an unreadable token.") from exc
        if answer.token_type.lower() != "bearer":
            raise EhrError("The EHR's token endpoint answered a token that is not a bearer token.")
        expires_in = answer.expires_in or DEFAULT_EXPIRES_IN
        self._access_token = answer.access_token
        self._refresh_at = started + expires_in - min(REFRESH_MARGIN_SECONDS, expires_in / 10)
        logger.info("fhir access token fetched", extra={"expires_in": expires_in})
        return answer.access_token

    def _token_form(self, token_url: str) -> dict[str, str]:
        """The form of one token request; built per try, so a retry signs a new `jti`."""
        return {
            "grant_type": "client_credentials",
            "scope": self._scope,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.client_assertion(token_url),
        }

    async def _token_endpoint(self, send: Sender) -> str:
        if self._token_url is None:
            response = await send("GET", self._discovery_url, None)
            try:
                response.raise_for_status()
                found = _SmartConfiguration.model_validate_json(response.content)
            except (httpx.HTTPStatusError, ValidationError) as exc:
                raise EhrError(
                    "The EHR's .well-known/smart-configuration names no token endpoint; "
                    "set FHIR_TOKEN_URL.",
                    status=response.status_code,
                ) from exc
            self._token_url = found.token_endpoint
        return self._token_url


def _retrieve_outcome(task: asyncio.Task[str]) -> None:
    """Mark a failed fetch's error as seen even if every caller was cancelled meanwhile."""
    if not task.cancelled():
        task.exception()


def _token_error(response: httpx.Response) -> EhrError:
    """Translate a refused token request (RFC 6749 `{"error", "error_description"}`)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    error = str(body.get("error") or "")[:50]
    description = str(body.get("error_description") or "")[:200]
    logger.warning(
        "fhir token request refused", extra={"status": response.status_code, "error": error}
    )
    text = f"{error}: {description}" if description else error or "no reason given"
    if response.status_code in {400, 401, 403}:
        return EhrAuthError(
            f"The EHR's token endpoint refused our credentials ({text}).",
            status=response.status_code,
        )
    return EhrError(
        f"The EHR's token endpoint failed (HTTP {response.status_code}).",
        status=response.status_code,
    )


def check_key(key: SigningKey, algorithm: FhirSigningAlgorithm) -> None:
    """Check that `key` can sign with `algorithm` (RSA >= 2048 bits, or EC P-384).

    Raises:
        ValueError: the key does not fit the algorithm.
    """
    if algorithm is FhirSigningAlgorithm.RS384:
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
            raise ValueError("FHIR_SIGNING_ALGORITHM=RS384 needs an RSA key of 2048+ bits.")
    elif not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp384r1":
        raise ValueError("FHIR_SIGNING_ALGORITHM=ES384 needs an EC key on the P-384 curve.")


def load_private_key(*, pem: str | None, path: str | None) -> SigningKey:
    r"""Read the client's private key from PEM text (FHIR_PRIVATE_KEY) or a file.

    A PEM given in one line with literal `\n` (as some environments store it) is accepted.

    Raises:
        ValueError: no key, an unreadable one, or one that is neither RSA nor EC. The
            message never includes the key.
    """
    if path:
        data = Path(path).read_bytes()
    elif pem:
        data = (pem if "\n" in pem else pem.replace("\\n", "\n")).encode()
    else:
        raise ValueError("No FHIR private key: set FHIR_PRIVATE_KEY or FHIR_PRIVATE_KEY_PATH.")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("The FHIR private key is not an unencrypted PEM private key.") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("The FHIR private key must be an RSA or EC key.")
    return key


def public_jwks(key: SigningKey, *, key_id: str, algorithm: FhirSigningAlgorithm) -> str:
    """The JWKS (JSON) holding the public half of `key`, to register with the EHR."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    else:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    jwk.pop("key_ops", None)
    jwk.update({"kid": key_id, "alg": algorithm.value, "use": "sig"})
    return json.dumps({"keys": [jwk]}, indent=2)


def print_jwks() -> None:
    """Print the JWKS of the configured FHIR key (public half only)."""
    settings = get_settings()
    pem = settings.fhir_private_key.get_secret_value() if settings.fhir_private_key else None
    key = load_private_key(pem=pem, path=settings.fhir_private_key_path)
    algorithm = settings.fhir_signing_algorithm
    check_key(key, algorithm)
    print(public_jwks(key, key_id=settings.fhir_key_id or "fhir-key-1", algorithm=algorithm))
