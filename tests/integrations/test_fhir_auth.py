"""SMART Backend Services and static tokens against the FHIR stand-in, over real HTTP."""

import asyncio
import json
import logging
import secrets
import time
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest

from backend.app.core.config import FhirSigningAlgorithm
from backend.app.core.errors import (
    EhrAuthError,
    EhrRequestRejectedError,
    EhrResourceNotFoundError,
)
from backend.app.core.logging import JsonFormatter
from backend.app.integrations.fhir import SmartBackendAuth, create_fhir_client, load_private_key
from backend.app.integrations.fhir.smart import public_jwks
from tests.fakes.fhir_fake import CLIENT_ID, STATIC_TOKEN, FakeFhir, Fault
from tests.fakes.fhir_fixtures import (
    EC_KEY,
    IDENTIFIER_SYSTEM,
    RSA_KEY,
    fhir_settings,
    open_fhir_client,
)
from tests.fakes.smart_fake import ASSERTION_TYPE, new_key

PATIENT = {
    "identifier_system": IDENTIFIER_SYSTEM,
    "identifier_value": "42",
    "name": "Ada Lovelace",
    "phone": "+14155550100",
    "email": "ada@example.com",
}


def _form(request) -> dict[str, str]:
    return dict(parse_qsl(request.body.decode()))


def _seed(fake: FakeFhir) -> str:
    return fake.add_patient({"name": [{"family": "Lovelace", "given": ["Ada"]}]})["id"]


@pytest.mark.parametrize("key", [RSA_KEY, EC_KEY], ids=["RS384", "ES384"])
async def test_token_request_carries_a_signed_client_assertion(fhir_fake, key):
    settings = fhir_settings(fhir_fake, algorithm=key.algorithm, fhir_token_url=fhir_fake.token_url)
    async with open_fhir_client(settings) as client:
        await client.ensure_patient(**PATIENT)
    [token_request] = fhir_fake.token_requests()
    form = _form(token_request)
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert form["scope"] == "system/Patient.rs system/Patient.c system/Patient.u"
    assert jwt.get_unverified_header(form["client_assertion"]) == {
        "alg": key.algorithm,
        "kid": key.kid,
        "typ": "JWT",
    }
    claims = jwt.decode(
        form["client_assertion"],
        key.public_key,
        algorithms=[key.algorithm],
        audience=fhir_fake.token_url,
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == fhir_fake.token_url
    assert 0 < claims["exp"] - time.time() <= 300
    assert len(claims["jti"]) >= 16
    assert [c for _, c in fhir_fake.assertions] == [claims]  # the stand-in verified it too
    [create] = fhir_fake.fhir_requests("POST")
    assert create.headers["authorization"] == f"Bearer {fhir_fake.issued[0]}"


async def test_token_endpoint_is_discovered_from_smart_configuration_once(fhir_fake):
    patient_id = _seed(fhir_fake)
    async with open_fhir_client(fhir_settings(fhir_fake)) as client:
        await client.read_patient(patient_id)
        fhir_fake.revoke_tokens()
        await client.read_patient(patient_id)  # a second token, same endpoint
    paths = [(r.method, r.path) for r in fhir_fake.requests]
    assert paths == [
        ("GET", "/fhir/.well-known/smart-configuration"),
        ("POST", "/auth/token"),
        ("GET", f"/fhir/Patient/{patient_id}"),
        ("GET", f"/fhir/Patient/{patient_id}"),
        ("POST", "/auth/token"),
        ("GET", f"/fhir/Patient/{patient_id}"),
    ]


async def test_token_is_cached_between_calls(fhir_fake):
    patient_id = _seed(fhir_fake)
    async with open_fhir_client(fhir_settings(fhir_fake)) as client:
        for _ in range(3):
            await client.read_patient(patient_id)
    assert len(fhir_fake.token_requests()) == 1
    used = {r.headers["authorization"] for r in fhir_fake.fhir_requests("GET")}
    assert used == {f"Bearer {fhir_fake.issued[0]}"}


async def test_twenty_concurrent_callers_share_one_token_request(fhir_fake):
    patient_id = _seed(fhir_fake)
    fhir_fake.token_delay = 0.3  # every caller arrives while the one fetch is in flight
    async with open_fhir_client(fhir_settings(fhir_fake)) as client:
        records = await asyncio.gather(*(client.read_patient(patient_id) for _ in range(20)))
    assert {r.id for r in records} == {patient_id}
    assert len(fhir_fake.token_requests()) == 1
    used = [r.headers["authorization"] for r in fhir_fake.fhir_requests("GET")]
    assert used == [f"Bearer {fhir_fake.issued[0]}"] * 20


async def test_twenty_concurrent_callers_share_one_refused_token_request(fhir_fake):
    fhir_fake.token_delay = 0.3
    settings = fhir_settings(fhir_fake, fhir_key_id="not-registered")
    async with open_fhir_client(settings) as client:
        outcomes = await asyncio.gather(
            *(client.read_patient("abc") for _ in range(20)), return_exceptions=True
        )
    assert all(isinstance(outcome, EhrAuthError) for outcome in outcomes)
    assert len(fhir_fake.token_requests()) == 1
    assert fhir_fake.fhir_requests() == []


async def test_token_is_renewed_once_before_it_expires(fhir_fake):
    patient_id = _seed(fhir_fake)
    fhir_fake.token_lifetime = 1  # renewed 0.1 s before expiry
    async with open_fhir_client(fhir_settings(fhir_fake)) as client:
        await client.read_patient(patient_id)
        await asyncio.sleep(1.0)
        await asyncio.gather(*(client.read_patient(patient_id) for _ in range(20)))
    assert len(fhir_fake.token_requests()) == 2
    assert fhir_fake.refused_tokens == []  # renewed before the EHR had to refuse it
    used = [r.headers["authorization"] for r in fhir_fake.fhir_requests("GET")]
    assert used == [f"Bearer {fhir_fake.issued[0]}"] + [f"Bearer {fhir_fake.issued[1]}"] * 20


async def test_a_refused_token_is_replaced_and_the_call_tried_once_more(fhir_fake):
    patient_id = _seed(fhir_fake)
    async with open_fhir_client(fhir_settings(fhir_fake)) as client:
        await client.read_patient(patient_id)
        fhir_fake.revoke_tokens()  # e.g. the EHR restarted and forgot its tokens
        record = await client.read_patient(patient_id)
    assert record.id == patient_id
    assert fhir_fake.refused_tokens == [fhir_fake.issued[0]]
    assert len(fhir_fake.token_requests()) == 2


async def test_a_retried_token_request_signs_a_new_assertion(fhir_fake):
    fhir_fake.faults.append(Fault(status=503, prefix="/auth/token"))
    settings = fhir_settings(
        fhir_fake, fhir_token_url=fhir_fake.token_url, fhir_max_retry_wait_seconds=0.2
    )
    async with open_fhir_client(settings) as client:
        await client.ensure_patient(**PATIENT)
    first, second = (_form(r)["client_assertion"] for r in fhir_fake.token_requests())
    jti = [jwt.decode(a, options={"verify_signature": False})["jti"] for a in (first, second)]
    assert jti[0] != jti[1]  # the stand-in refuses a reused jti
    assert len(fhir_fake.issued) == 1


async def test_a_refused_client_is_an_auth_error_and_not_retried(fhir_fake):
    settings = fhir_settings(fhir_fake, fhir_key_id="not-registered")
    async with open_fhir_client(settings) as client:
        with pytest.raises(EhrAuthError) as caught:
            await client.ensure_patient(**PATIENT)
    assert "invalid_client" in caught.value.message
    assert caught.value.status == 400
    assert len(fhir_fake.token_requests()) == 1
    assert fhir_fake.fhir_requests("POST") == []


async def test_static_token_is_sent_as_it_is(fhir_fake):
    settings = fhir_settings(fhir_fake, fhir_access_token=STATIC_TOKEN)
    async with open_fhir_client(settings) as client:
        await client.ensure_patient(**PATIENT)
    assert fhir_fake.token_requests() == []
    [create] = fhir_fake.fhir_requests("POST")
    assert create.headers["authorization"] == f"Bearer {STATIC_TOKEN}"


async def test_a_refused_static_token_is_an_auth_error_without_the_token(fhir_fake):
    settings = fhir_settings(fhir_fake, fhir_access_token="wrong-static-token-0123456789")
    async with open_fhir_client(settings) as client:
        with pytest.raises(EhrAuthError) as caught:
            await client.read_patient("abc")
    assert caught.value.status == 401
    assert "wrong-static-token" not in str(caught.value)
    assert len(fhir_fake.fhir_requests("GET")) == 1


def _assertion(key, *, kid=None, **claims) -> str:
    now = int(time.time())
    values = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "exp": now + 240,
        "jti": secrets.token_hex(16),
        **claims,
    }
    headers = {"kid": kid or key.kid}
    return jwt.encode(values, key.private_pem, algorithm=key.algorithm, headers=headers)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda f: _assertion(RSA_KEY, aud="https://elsewhere.example/token"), "InvalidAudience"),
        (lambda f: _assertion(RSA_KEY, aud=f.token_url, exp=int(time.time()) - 60), "Expired"),
        (lambda f: _assertion(RSA_KEY, aud=f.token_url, exp=int(time.time()) + 600), "5 minutes"),
        (lambda f: _assertion(RSA_KEY, aud=f.token_url, iss="someone-else"), "iss and sub"),
        (lambda f: _assertion(RSA_KEY, aud=f.token_url, sub="someone-else"), "iss and sub"),
        (
            lambda f: _assertion(new_key("x", "RS384"), kid=RSA_KEY.kid, aud=f.token_url),
            "InvalidSignature",
        ),
        (lambda f: _assertion(RSA_KEY, kid="unknown", aud=f.token_url), "Unknown kid"),
    ],
    ids=["wrong-aud", "expired", "exp-too-far", "wrong-iss", "wrong-sub", "bad-signature", "kid"],
)
async def test_stand_in_refuses_bad_client_assertions(fhir_fake, make, reason):
    """The stand-in would catch a client that got its assertion wrong."""
    answer = await _post_token(fhir_fake, make(fhir_fake))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client"
    assert reason in answer.json()["error_description"]


async def test_stand_in_refuses_a_reused_jti(fhir_fake):
    assertion = _assertion(RSA_KEY, aud=fhir_fake.token_url)
    assert (await _post_token(fhir_fake, assertion)).status_code == 200
    again = await _post_token(fhir_fake, assertion)
    assert again.status_code == 400
    assert again.json()["error_description"] == "jti was used before."


async def _post_token(fake: FakeFhir, assertion: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "scope": "system/Patient.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.post(fake.token_url, data=form)


async def test_no_secret_or_personal_field_reaches_a_log_line(fhir_fake, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    fhir_fake.faults.append(Fault(status=503, prefix="/auth/token"))
    settings = fhir_settings(fhir_fake, fhir_max_retry_wait_seconds=0.2)
    async with open_fhir_client(settings) as client:
        record = await client.ensure_patient(**PATIENT)
        fhir_fake.revoke_tokens()
        await client.read_patient(record.id)
        with pytest.raises(EhrRequestRejectedError):
            await client.create({"resourceType": "Patient", "birthDate": "1970-13-01"})
        with pytest.raises(EhrResourceNotFoundError):
            await client.read_patient("missing")
    async with open_fhir_client(fhir_settings(fhir_fake, fhir_key_id="nope")) as refused:
        with pytest.raises(EhrAuthError):
            await refused.read_patient(record.id)
    async with open_fhir_client(fhir_settings(fhir_fake, fhir_access_token=STATIC_TOKEN)) as st:
        await st.read_patient(record.id)
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assertions = [_form(r)["client_assertion"] for r in fhir_fake.token_requests()]
    pem_lines = [line for line in RSA_KEY.private_pem.splitlines() if "-----" not in line]
    secret_values = [*fhir_fake.issued, *assertions, *pem_lines, STATIC_TOKEN]
    personal = [PATIENT["name"], "Lovelace", PATIENT["phone"], PATIENT["email"]]
    assert "fhir access token fetched" in logged  # the flow did log
    assert "fhir call failed, retrying" in logged
    for value in secret_values + personal:
        assert value not in logged
    assert json.dumps(secret_values[0]).strip('"') not in logged


async def test_key_must_fit_the_algorithm_and_is_never_echoed(fhir_fake):
    with pytest.raises(ValueError, match="ES384 needs an EC key"):
        create_fhir_client(
            fhir_settings(fhir_fake, fhir_signing_algorithm="ES384", fhir_key_id=RSA_KEY.kid)
        )
    garbage = "-----BEGIN PRIVATE KEY-----\nnot-a-key-c2VjcmV0\n-----END PRIVATE KEY-----"
    with pytest.raises(ValueError, match="not an unencrypted PEM") as caught:
        create_fhir_client(fhir_settings(fhir_fake, fhir_private_key=garbage))
    assert "c2VjcmV0" not in str(caught.value)


async def test_private_key_from_a_path_or_one_line_pem(fhir_fake, tmp_path):
    key_file = tmp_path / "fhir_key.pem"
    key_file.write_text(RSA_KEY.private_pem)
    one_line = RSA_KEY.private_pem.replace("\n", "\\n")
    patient_id = _seed(fhir_fake)
    for overrides in (
        {"fhir_private_key": None, "fhir_private_key_path": str(key_file)},
        {"fhir_private_key": one_line},
    ):
        async with open_fhir_client(fhir_settings(fhir_fake, **overrides)) as client:
            assert (await client.read_patient(patient_id)).id == patient_id
    assert len(fhir_fake.issued) == 2


@pytest.mark.parametrize("key", [RSA_KEY, EC_KEY], ids=["RS384", "ES384"])
def test_the_printed_jwks_verifies_our_client_assertions(key):
    private = load_private_key(pem=key.private_pem, path=None)
    algorithm = FhirSigningAlgorithm(key.algorithm)
    [jwk] = json.loads(public_jwks(private, key_id=key.kid, algorithm=algorithm))["keys"]
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (key.kid, key.algorithm, "sig")
    assert "d" not in jwk  # the public half only
    auth = SmartBackendAuth(
        client_id=CLIENT_ID,
        private_key=private,
        key_id=key.kid,
        algorithm=algorithm,
        scope="system/Patient.rs",
        fhir_base_url="https://ehr.example/fhir",
        token_url=None,
    )
    assertion = auth.client_assertion("https://ehr.example/token")
    claims = jwt.decode(
        assertion,
        jwt.PyJWK(jwk).key,
        algorithms=[key.algorithm],
        audience="https://ehr.example/token",
    )
    assert claims["iss"] == CLIENT_ID
