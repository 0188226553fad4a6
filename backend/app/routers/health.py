"""Liveness and readiness probes."""

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.app.core.errors import ServiceUnavailableError, error_responses

router = APIRouter(tags=["health"], responses=error_responses(500))

READY_TIMEOUT_SECONDS = 3.0


class HealthStatus(BaseModel):
    """The process (or the database) is up."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = "ok"


@router.get("/health", response_model=HealthStatus, operation_id="health")
async def health() -> HealthStatus:
    """Answer while the process lives; touches nothing else."""
    return HealthStatus()


@router.get(
    "/health/ready",
    response_model=HealthStatus,
    operation_id="health_ready",
    responses=error_responses(ServiceUnavailableError),
)
async def health_ready(request: Request) -> HealthStatus:
    """Answer 200 when the database answers a trivial query, 503 when it does not.

    Raises:
        ServiceUnavailableError: the database did not answer within a few seconds.
    """
    engine: AsyncEngine = request.app.state.engine
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise ServiceUnavailableError("The database is not reachable.") from exc
    return HealthStatus()
