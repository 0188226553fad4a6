"""`/docs` and `/redoc` render our API in a real (headless) browser, with no internet at all.

The real server runs as `make run` runs it; the browser gets --disable-background-networking,
and every request a page makes is checked: same origin, `data:`/`blob:`, or refused by the
page's Content-Security-Policy (ReDoc's sidebar logo points at a CDN).
"""

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser import Browser
from tests.server import RunningServer, serve

pytestmark = pytest.mark.slow

ADMIN_EMAIL = "docs-admin@example.com"
ADMIN_PASSWORD = "docs-admin-password"
# Kept after the run for a person to look at (default: the system temp folder, /tmp).
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", tempfile.gettempdir()))
ASSET_ATTRIBUTE = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']([^"']+)""")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("docs-server")
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'app.db'}",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "FIRST_ADMIN_EMAIL": ADMIN_EMAIL,
        "FIRST_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    with serve(env, folder / "server.log", timeout=60) as running:
        yield running


@pytest.fixture(scope="module")
def spec(server: RunningServer) -> dict:
    response = httpx.get(f"{server.base_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def assert_nothing_left_the_machine(page: Browser, base_url: str) -> None:
    origin = urlsplit(base_url).netloc
    outside = [
        url
        for url in page.requests
        if urlsplit(url).scheme not in {"data", "blob"}
        and urlsplit(url).netloc != origin
        and url not in page.blocked
    ]
    assert page.requests, "the browser recorded no request at all"
    assert not outside, f"the page fetched from outside the app: {outside}"


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
def test_page_html_references_only_our_static_assets(server, page_path):
    response = httpx.get(f"{server.base_url}{page_path}", timeout=10)
    assert response.status_code == 200
    assets = ASSET_ATTRIBUTE.findall(response.text)
    assert any(asset.endswith(".js") for asset in assets), assets
    assert all(asset.startswith("/static/") for asset in assets), assets
    assert "http://" not in response.text
    assert "https://" not in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_swagger_ui_renders_every_operation_and_the_authorize_button(server, spec):
    with Browser() as page:
        page.open(f"{server.base_url}/docs")
        expected = operations(spec)
        page.wait_for(f"document.querySelectorAll('.opblock').length >= {len(expected)}")
        rendered = page.evaluate(
            "[...document.querySelectorAll('.opblock')].map(b => [b.id,"
            " b.querySelector('.opblock-summary-path').dataset.path])"
        )
        wanted = [
            [f"operations-{op['tags'][0]}-{op['operationId']}", path] for _, path, op in expected
        ]
        assert sorted(rendered) == sorted(wanted)
        assert ["operations-users-list_users", "/api/v1/users"] in rendered
        assert page.evaluate("document.querySelector('button.authorize').textContent") == (
            "Authorize"
        )
        page.screenshot(SCREENSHOTS / "docs-swagger-ui.png")
        assert_nothing_left_the_machine(page, server.base_url)
        assert not [line for line in page.console if line.startswith("exception")], page.console


def test_swagger_ui_logs_in_and_calls_users_me(server, spec):
    me = spec["paths"]["/api/v1/users/me"]["get"]
    block = f"#operations-{me['tags'][0]}-{me['operationId']}"
    with Browser() as page:
        page.open(f"{server.base_url}/docs")
        page.click("button.authorize")
        page.fill(".modal-ux #oauth_username", ADMIN_EMAIL)
        page.fill(".modal-ux #oauth_password", ADMIN_PASSWORD)
        page.click(".modal-ux .modal-btn.authorize")
        page.wait_for(
            "[...document.querySelectorAll('.modal-ux button')]"
            ".some(b => b.textContent.trim() === 'Logout')"
        )
        page.click(".modal-ux .btn-done")
        page.click(f"{block} .opblock-summary-control")
        page.click(f"{block} .try-out__btn")
        page.click(f"{block} .execute")
        live = f"{block} .live-responses-table"
        status = page.wait_for(
            f"document.querySelector('{live} tr.response .response-col_status')?.textContent.trim()"
        )
        body = page.evaluate(
            f"document.querySelector('{block} .live-responses-table .microlight').textContent"
        )
        page.evaluate(f"document.querySelector('{block} .live-responses-table').scrollIntoView()")
        page.screenshot(SCREENSHOTS / "docs-swagger-ui-users-me.png")
        assert status == "200", body
        assert ADMIN_EMAIL in body
        assert '"role": "admin"' in body
        assert_nothing_left_the_machine(page, server.base_url)


def test_redoc_renders_every_operation(server, spec):
    with Browser() as page:
        page.open(f"{server.base_url}/redoc")
        expected = [op["operationId"] for _, _, op in operations(spec)]
        page.wait_for(f"document.querySelector('[data-section-id=\"operation/{expected[-1]}\"]')")
        sections = page.evaluate(
            "[...document.querySelectorAll('[data-section-id]')].map(e => e.dataset.sectionId)"
        )
        missing = [op_id for op_id in expected if f"operation/{op_id}" not in sections]
        assert not missing, f"ReDoc did not render: {missing}"
        assert page.evaluate("document.querySelector('h1').textContent").startswith(
            spec["info"]["title"]
        )
        page.screenshot(SCREENSHOTS / "docs-redoc.png")
        assert_nothing_left_the_machine(page, server.base_url)
        assert not [line for line in page.console if line.startswith("exception")], page.console
