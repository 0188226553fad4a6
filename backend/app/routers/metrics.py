"""`GET /metrics`: Prometheus text, for the scraper (not in the OpenAPI schema).

Registered when metrics are served (`Settings.metrics_served`): always outside production,
and in production only with METRICS_TOKEN, which the caller then sends as a bearer token.
"""

import asyncio
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from backend.app.core.deps import SettingsDep
from backend.app.core.errors import UnauthorizedError
from backend.app.core.metrics import Exposition

router = APIRouter(include_in_schema=False)


async def get_exposition(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Exposition:
    """Return the app's metrics if the caller may read them.

    Raises:
        UnauthorizedError: METRICS_TOKEN is set and the request does not carry it.
    """
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        if not hmac.compare_digest((authorization or "").encode(), expected):
            raise UnauthorizedError("Send Authorization: Bearer <METRICS_TOKEN>.")
    exposition: Exposition = request.app.state.metrics_exposition
    return exposition


@router.get("/metrics", response_class=Response)
async def metrics(exposition: Annotated[Exposition, Depends(get_exposition)]) -> Response:
    """Every metric of the API (all its processes in multiprocess mode), Prometheus text."""
    body = await asyncio.to_thread(exposition.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
