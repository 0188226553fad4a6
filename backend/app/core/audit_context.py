"""Who is acting, for the audit trail: set once per request (or per process), read by the hooks.

A `ContextVar` holds the current `AuditContext`. `start_request_context` (called by
`core.middleware`) starts one for each HTTP request (actor `anonymous`, the request id and
the client address); `deps.accept_user` names the user (`user:<id>`); the webhook routers
name their provider (`webhook:twilio`). Outside a request the actor is `system`
(start-up) unless the code says otherwise: the CLI runs `with acting_as(CLI)`, and the
worker's sessions carry `worker` themselves (`core.audit.sessions_acting_as`).

Asyncio tasks copy the context when they start and greenlets (SQLAlchemy's async bridge)
share it, so the hooks that run inside a flush see the request's values.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from typing import Any

ANONYMOUS = "anonymous"
SYSTEM = "system"
WORKER = "worker"
CLI = "cli"
WEBHOOK_TWILIO = "webhook:twilio"
WEBHOOK_STRIPE = "webhook:stripe"


def user_actor(user_id: int) -> str:
    """The actor name of a user: `user:<id>`."""
    return f"user:{user_id}"


@dataclass
class AuditContext:
    """Who acts, and the request they act through (None outside a request)."""

    actor: str = SYSTEM
    actor_id: int | None = None
    request_id: str | None = None
    client_ip: str | None = None


_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)
_SYSTEM_CONTEXT = AuditContext()


def current_audit_context() -> AuditContext:
    """Return the context of the running request or task (`system` if none was set)."""
    return _current.get() or _SYSTEM_CONTEXT


def set_actor(actor: str, *, actor_id: int | None = None) -> None:
    """Name who acts from here on in this request (or task).

    Inside a request the request's context is changed in place, so the change is seen by
    code that runs in a thread or a task the request started.
    """
    context = _current.get()
    if context is None:
        _current.set(AuditContext(actor=actor, actor_id=actor_id))
    else:
        context.actor, context.actor_id = actor, actor_id


def set_user(user_id: int) -> None:
    """Name the authenticated user as the actor (`user:<id>`)."""
    set_actor(user_actor(user_id), actor_id=user_id)


@contextmanager
def acting_as(actor: str) -> Iterator[AuditContext]:
    """Act as `actor` inside the block (the CLI, a script), then restore what was before."""
    context = replace(current_audit_context(), actor=actor, actor_id=None)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def start_request_context(request_id: str, client: tuple[str, int] | None) -> Token[Any]:
    """Start an HTTP request's audit context: `anonymous`, its request id and client address.

    Called by `core.middleware.RequestContextMiddleware` for every request; the client
    address is the one uvicorn reports (the proxy's `X-Forwarded-For` when it is trusted,
    see `cli.serve`). Pass the returned token to `end_request_context`.
    """
    client_ip = str(client[0])[:64] if client else None
    return _current.set(AuditContext(actor=ANONYMOUS, request_id=request_id, client_ip=client_ip))


def end_request_context(token: Token[Any]) -> None:
    """End the request's audit context (what `start_request_context` returned)."""
    _current.reset(token)
