"""Wire shapes of users and auth."""

from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    StringConstraints,
)

from backend.app.models.user import UserRole
from backend.app.schemas.common import InputModel, OutputModel, Page
from backend.app.schemas.fields import Omittable, StrictBool, StrictEmail, single_line

# Never stored (only its hash), so any character is allowed.
Password = Annotated[str, Strict(), StringConstraints(min_length=8, max_length=128)]
FullName = Annotated[str, single_line(max_length=200)]

_USER_READ_EXAMPLE: dict[str, JsonValue] = {
    "id": 1,
    "email": "ada@example.com",
    "full_name": "Ada",
    "role": "member",
    "is_active": True,
    "created_at": "2026-01-05T09:30:00Z",
}


class UserRegister(InputModel):
    """Self-service sign-up."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "password": "correct horse battery",
                    "full_name": "Ada",
                }
            ]
        }
    )

    email: StrictEmail
    password: Password = Field(description="8-128 characters.")
    full_name: FullName | None = None


class UserUpdate(InputModel):
    """What an admin may change on a user; every field optional."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"role": "admin"}, {"is_active": False}]}
    )

    role: Omittable[UserRole] = None
    is_active: Omittable[StrictBool] = None
    full_name: FullName | None = None


class UserRead(OutputModel):
    """A user as the API shows it: never a password or a hash."""

    model_config = ConfigDict(json_schema_extra={"examples": [_USER_READ_EXAMPLE]})

    id: int
    email: str
    full_name: str | None
    role: UserRole
    is_active: bool
    created_at: datetime


class UserPage(Page[UserRead]):
    """A page of users."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_USER_READ_EXAMPLE], "total": 1, "limit": 50, "offset": 0}]
        }
    )


class LoginForm(BaseModel):
    """The OAuth2 password grant's form (RFC 6749 section 4.3.2); `username` is the email.

    Swagger UI's Authorize button sends it as is. Client credentials are accepted and unused.
    """

    grant_type: Annotated[str, StringConstraints(pattern=r"^password$")] | None = None
    username: Annotated[str, single_line(max_length=320)] = Field(description="The email.")
    password: Annotated[str, StringConstraints(strict=True, max_length=1024)]
    scope: Annotated[str, single_line(max_length=1000, min_length=0)] = ""
    client_id: Annotated[str, single_line(max_length=255, min_length=0)] | None = None
    client_secret: Annotated[str, StringConstraints(max_length=1024)] | None = None


class Token(OutputModel):
    """An OAuth2 bearer access token."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"access_token": "eyJhbGciOi...", "token_type": "bearer", "expires_in": 3600}
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")
