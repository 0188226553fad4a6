"""The fake checkout page in a real headless Chromium, served by the real server.

A developer's flow with BILLING_PROVIDER=fake: bill a lead through the API, open the
`checkout_url`, click Pay; the page's signed webhook marks the payment paid and the lead won.
The page works under its own Content-Security-Policy, and no other site can frame it.
"""

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser import Browser, html_page
from tests.server import RunningServer, serve

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@pytest.fixture
def server(empty_database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    env = {
        "DATABASE_URL": empty_database_url,
        "ENVIRONMENT": "development",
        "BILLING_PROVIDER": "fake",
        "WORKER_IN_APP": "false",
        "LOG_LEVEL": "WARNING",
    }
    with serve(env, tmp_path / "server.log") as running:
        yield running


def _bill_a_lead(http: httpx.Client) -> tuple[dict[str, str], dict, dict]:
    email = "payer.owner@example.com"
    assert (
        http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code
        == 201
    )
    token = http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    lead = http.post("/api/v1/leads", json={"name": "Ada Payer"}, headers=auth).json()
    payment = http.post(
        f"/api/v1/leads/{lead['id']}/payments",
        json={"amount": 12500, "currency": "eur", "description": "Kick-off workshop"},
        headers=auth,
    )
    assert payment.status_code == 201, payment.text
    return auth, lead, payment.json()


def test_paying_on_the_fake_checkout_page_marks_the_payment_paid(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        auth, lead, payment = _bill_a_lead(http)
        checkout = urlsplit(payment["checkout_url"])
        assert checkout.path == f"/dev/checkout/{payment['provider_payment_id']}"

        with Browser(timeout=20) as page:
            # PUBLIC_BASE_URL is left at its default; the page lives on the server's port.
            page.open(server.base_url + checkout.path)
            text = page.evaluate("document.body.innerText")
            assert "Kick-off workshop" in text
            assert "12500 EUR" in text
            # Its style and script run under its CSP: the font is styled, Pay works.
            assert page.evaluate("getComputedStyle(document.body).fontFamily") == "sans-serif"
            page.click("#pay")
            page.wait_for("document.body.dataset.status === 'paid'")
            assert "Payment paid" in page.evaluate("document.getElementById('result').innerText")
            assert page.evaluate("document.querySelectorAll('button').length") == 0
            assert not [line for line in page.console if line.startswith("exception")]
            assert not [line for line in page.console if line.startswith("security")]

            # Another site framing the page (to overlay the Pay button) gets an error page.
            framing = f'<!doctype html><iframe src="{server.base_url + checkout.path}"></iframe>'
            with html_page(framing) as attacker:
                page.open(attacker)
                [(url, text)] = page.frame_texts()
            assert url.startswith("chrome-error://")
            assert "Fake checkout" not in text
            assert any("frame-ancestors 'none'" in line for line in page.console), page.console

        payments = http.get(f"/api/v1/leads/{lead['id']}/payments", headers=auth).json()
        assert [p["status"] for p in payments["items"]] == ["paid"]
        assert http.get(f"/api/v1/leads/{lead['id']}", headers=auth).json()["status"] == "won"
