"""Wire shapes of the audit trail (read only: no route creates, changes or deletes one)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from backend.app.schemas.common import OutputModel, Page

_AUDIT_EVENT_EXAMPLE: dict[str, JsonValue] = {
    "id": 981,
    "occurred_at": "2026-01-05T09:31:12.048Z",
    "actor_id": 1,
    "actor": "user:1",
    "action": "update",
    "entity_type": "lead",
    "entity_id": 42,
    "changes": {"status": {"old": "new", "new": "contacted"}},
    "request_id": "5f0c6a3e9b7d4c21a8e4f1d2c3b4a596",
    "client_ip": "203.0.113.7",
}


# A recorded value: text (times in ISO 8601, cut to 256 characters), a number, a boolean.
AuditValue = str | int | float | bool | None


class AuditChange(BaseModel):
    """A field's value before and after (null for a field that was empty or is gone)."""

    old: AuditValue = Field(description="The value before; `[redacted]` for a secret.")
    new: AuditValue = Field(description="The value after; `[redacted]` for a secret.")


class AuditEventRead(OutputModel):
    """One change of a record or one security event, as the API returns it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_AUDIT_EVENT_EXAMPLE]})

    id: int
    occurred_at: datetime
    actor_id: int | None = Field(description="The acting user's id; null for other actors.")
    actor: str = Field(
        description="`user:<id>`, `anonymous`, `system`, `worker`, `webhook:<provider>` or `cli`."
    )
    action: str = Field(
        description="`create`, `update`, `delete`, or a security event: `login_succeeded`, "
        "`login_failed`, `registered`, `registration_refused`, `role_changed`, `activated`, "
        "`deactivated`, `admin_created`."
    )
    entity_type: str = Field(description="The record's kind, e.g. `lead`, `message`, `user`.")
    entity_id: int | None = Field(description="The record's id; null when there is none.")
    changes: dict[str, AuditChange] | None = Field(
        description="Each changed field's old and new value. Long text is cut short."
    )
    request_id: str | None = Field(description="The `X-Request-ID` of the request, if any.")
    client_ip: str | None = Field(description="The client's address, if a request did it.")


class AuditEventPage(Page[AuditEventRead]):
    """A page of audit events, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_AUDIT_EVENT_EXAMPLE], "total": 1, "limit": 50, "offset": 0}]
        }
    )
