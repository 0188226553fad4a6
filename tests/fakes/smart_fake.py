"""The SMART Backend Services side of the FHIR stand-in: client keys and token requests.

`verify_token_request` checks what an EHR's token endpoint checks: the client-credentials
grant, the jwt-bearer assertion type, the assertion's signature against the public key its
`kid` names, `iss` = `sub` = the client id, `aud` = the token URL, `exp` present, not past
and at most 5 minutes ahead, a `jti`, and scopes the client may have. (A `jti` seen before
is refused by the caller, which keeps the set of used ones.)
"""

import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.responses import JSONResponse, Response

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPES = {"system/Patient.rs", "system/Patient.c", "system/Patient.u", "system/Patient.read"}
MAX_ASSERTION_SECONDS = 300


@dataclass(frozen=True)
class ClientKey:
    """A key pair the client signs with; the stand-in knows the public half by `kid`."""

    kid: str
    algorithm: str
    private_pem: str
    public_key: Any


def new_key(kid: str, algorithm: str) -> ClientKey:
    """A fresh RSA 2048 (RS384) or EC P-384 (ES384) key pair."""
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS384"
        else ec.generate_private_key(ec.SECP384R1())
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ClientKey(kid, algorithm, pem, private.public_key())


@dataclass(frozen=True)
class Refusal:
    """An RFC 6749 error answer of the token endpoint."""

    error: str
    description: str

    def response(self) -> Response:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=400)


def smart_configuration(token_url: str) -> dict[str, Any]:
    """What `[base]/.well-known/smart-configuration` announces for backend services."""
    return {
        "token_endpoint": token_url,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": sorted(SCOPES),
        "capabilities": ["client-confidential-asymmetric"],
    }


def verify_token_request(
    form: dict[str, str], *, keys: dict[str, ClientKey], client_id: str, audience: str
) -> tuple[dict[str, Any], dict[str, Any]] | Refusal:
    """Return the assertion's (header, claims) if the request is good, else the refusal."""
    if form.get("grant_type") != "client_credentials":
        return Refusal("unsupported_grant_type", "Only client_credentials.")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        return Refusal("invalid_request", "client_assertion_type must be jwt-bearer.")
    assertion = form.get("client_assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
        key = keys[header.get("kid", "")]
        claims = jwt.decode(
            assertion,
            key.public_key,
            algorithms=[key.algorithm],
            audience=audience,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except KeyError:
        return Refusal("invalid_client", "Unknown kid.")
    except jwt.PyJWTError as exc:
        return Refusal("invalid_client", f"Bad client assertion: {type(exc).__name__}.")
    if claims["iss"] != client_id or claims["sub"] != client_id:
        return Refusal("invalid_client", "iss and sub must be the client id.")
    if claims["exp"] > time.time() + MAX_ASSERTION_SECONDS:
        return Refusal("invalid_client", "exp is more than 5 minutes ahead.")
    if not set(form.get("scope", "").split()) <= SCOPES:
        return Refusal("invalid_scope", "A scope is not granted to this client.")
    return header, claims
