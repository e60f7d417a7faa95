"""Users, scopes and page bodies of the admin API (pydantic at the edge; the core keeps its dataclasses).

Client bodies are in ``client_models``. Every field carries a description and an example for
``/openapi.json``.
"""

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from oauth_service.db.admin import Scope
from oauth_service.oauth.models import User

T = TypeVar("T")

_USER_ID = "4b0c1f9e-7d7a-4f5e-9a57-0c1e2d3f4a5b"
_PASSWORD_EXAMPLE = "correct horse battery staple"
_CURSOR_EXAMPLE = "YmlsbGluZw.Nl2q5Y0b8c1dXr3pQ7sV4A"

EmailField = Annotated[
    str,
    Field(
        min_length=3,
        max_length=320,
        description="The sign-in email, unique regardless of case.",
        examples=["alice@example.com"],
    ),
]
PasswordField = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="The password, at least 8 characters; stored only as an argon2id hash.",
        examples=[_PASSWORD_EXAMPLE],
    ),
]
IsAdminField = Annotated[
    bool,
    Field(
        description="Whether the user may be granted the admin scope (and so use this API).",
        examples=[False],
    ),
]
ScopeNameField = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="The scope token (RFC 6749 §3.3: printable ASCII, no space, quote or backslash).",
        examples=["notes:read"],
    ),
]
ScopeDescriptionField = Annotated[
    str,
    Field(
        max_length=512,
        description="What the scope allows, shown on the consent page.",
        examples=["Read your notes"],
    ),
]


class UserIn(BaseModel):
    """A new user."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "alice@example.com", "password": _PASSWORD_EXAMPLE}]
        },
    )

    email: EmailField
    password: PasswordField
    is_admin: IsAdminField = False


class PasswordIn(BaseModel):
    """A new password set by an administrator."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"password": _PASSWORD_EXAMPLE}]},
    )

    password: PasswordField


class UserOut(BaseModel):
    """A user (never the password hash)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _USER_ID,
                    "email": "alice@example.com",
                    "is_active": True,
                    "is_admin": False,
                }
            ]
        }
    )

    id: Annotated[
        str,
        Field(
            description="The user id: the `sub` of the user's tokens and the `{user_id}` of these routes.",
            examples=[_USER_ID],
        ),
    ]
    email: EmailField
    is_active: Annotated[
        bool,
        Field(
            description="False once deactivated: sign-in and the user's tokens are refused.",
            examples=[True],
        ),
    ]
    is_admin: IsAdminField

    @classmethod
    def of(cls, user: User) -> "UserOut":
        """Map the core dataclass."""
        return cls(
            id=user.id,
            email=user.email,
            is_active=user.is_active,
            is_admin=user.is_admin,
        )


_SCOPE_EXAMPLE: JsonDict = {"name": "notes:read", "description": "Read your notes"}


class ScopeIn(BaseModel):
    """A new scope (RFC 6749 §3.3 token syntax)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [_SCOPE_EXAMPLE]}
    )

    name: ScopeNameField
    description: ScopeDescriptionField = ""


class ScopeOut(BaseModel):
    """A scope and its consent-page description."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SCOPE_EXAMPLE]})

    name: ScopeNameField
    description: ScopeDescriptionField

    @classmethod
    def of(cls, scope: Scope) -> "ScopeOut":
        """Map the service dataclass."""
        return cls(name=scope.name, description=scope.description)


def _page_example(schema: dict[str, Any], model: type[Any]) -> None:
    # A page's items example is its item model's own, so each list documents what it holds.
    args = getattr(model, "__pydantic_generic_metadata__", {}).get("args", ())
    config = getattr(args[0], "model_config", {}) if args else {}
    extra = config.get("json_schema_extra")
    items = extra.get("examples", [])[:1] if isinstance(extra, dict) else []
    schema["properties"]["items"]["examples"] = [items]
    schema["examples"] = [{"items": items, "next_cursor": _CURSOR_EXAMPLE}]


class PageOut(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next (``null`` at the end)."""

    model_config = ConfigDict(json_schema_extra=_page_example)

    items: Annotated[list[T], Field(description="This page's items, in list order.")]
    next_cursor: Annotated[
        str | None,
        Field(
            description="Pass as `cursor` for the next page; null on the last page. Signed and bound to "
            "this list.",
            examples=[_CURSOR_EXAMPLE],
        ),
    ]
