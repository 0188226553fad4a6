"""`make run`'s entry point with default settings converts a won lead with the fake EHR."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import RunningServer, serve, stop

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "ehr.admin@example.com"
ADMIN_PASSWORD = "ehr-admin-password"
LEAD = {"name": "Grace Hopper", "phone": "+14155550123", "email": "grace@example.com"}


@pytest.fixture
def server(empty_database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    # No EHR_* setting: the default provider, the in-process fake EHR.
    env = {
        "DATABASE_URL": empty_database_url,
        "FIRST_ADMIN_EMAIL": ADMIN_EMAIL,
        "FIRST_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LOG_LEVEL": "INFO",
    }
    with serve(env, tmp_path / "server.log") as running:
        yield running


def test_a_won_lead_becomes_a_patient_in_the_fake_ehr(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        lead = http.post("/api/v1/leads", json=LEAD, headers=auth).json()
        url = f"/api/v1/leads/{lead['id']}/ehr-patient"

        not_won = http.post(url, headers=auth)
        assert (not_won.status_code, not_won.json()["code"]) == (409, "lead_not_won")
        http.patch(f"/api/v1/leads/{lead['id']}", json={"status": "won"}, headers=auth)
        linked = http.post(url, headers=auth)
        assert linked.status_code == 201, linked.text
        patient = linked.json()
        assert patient["reference"] == f"Patient/{patient['patient_id']}"
        assert (patient["name"], patient["phone"], patient["email"]) == tuple(LEAD.values())
        assert patient["version_id"] == "1"
        again = http.post(url, headers=auth)
        assert (again.status_code, again.json()) == (200, patient)
        assert http.get(url, headers=auth).json() == patient
    stop(server.process)
    logs = server.logs()
    assert "lead linked to an ehr patient" in logs
    for value in (*LEAD.values(), "Hopper", ADMIN_PASSWORD):
        assert value not in logs
