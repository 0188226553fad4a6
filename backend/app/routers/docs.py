"""Swagger UI and ReDoc pages whose scripts and styles the app serves itself (no CDN)."""

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from backend.app.core.deps import TOKEN_URL

router = APIRouter(include_in_schema=False)

STATIC = "/static"
# Both pages may load only what the app serves: no CDN, no tracking pixel (ReDoc's sidebar
# logo points at cdn.redoc.ly; the browser now refuses it and ReDoc shows none).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'"
)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Serve the Swagger UI; its Authorize button uses the OAuth2 password flow."""
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{STATIC}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/swagger-ui/favicon-32x32.png",
        oauth2_redirect_url="/docs/oauth2-redirect",
        init_oauth={"usePkceWithAuthorizationCodeGrant": False},
        swagger_ui_parameters={"persistAuthorization": True, "tokenUrl": TOKEN_URL},
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    """Serve the OAuth2 redirect helper page of Swagger UI."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """Serve ReDoc, without Google Fonts."""
    page = get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{STATIC}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{STATIC}/swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
