"""Request and response bodies of the admin API (pydantic at the edge; the core keeps its dataclasses)."""

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from oauth_service.db.admin import Scope
from oauth_service.oauth.models import Client, User

T = TypeVar("T")

_STRICT = ConfigDict(extra="forbid")


class ClientIn(BaseModel):
    """A client registration (RFC 6749 §2; RFC 7591 field names)."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=255)
    grant_types: list[str] = Field(min_length=1, max_length=5)
    redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    scopes: list[str] = Field(default_factory=list, max_length=100)
    is_public: bool = False
    is_first_party: bool = False
    client_id: str | None = Field(default=None, min_length=1, max_length=255)


class ClientPatch(BaseModel):
    """Fields to change on a client; omitted fields keep their value."""

    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=255)
    grant_types: list[str] | None = Field(default=None, min_length=1, max_length=5)
    redirect_uris: list[str] | None = Field(default=None, max_length=20)
    scopes: list[str] | None = Field(default=None, max_length=100)
    is_first_party: bool | None = None


class ClientOut(BaseModel):
    """A registered client (never its secret)."""

    client_id: str
    name: str
    is_public: bool
    grant_types: list[str]
    redirect_uris: list[str]
    scopes: list[str]
    token_endpoint_auth_method: str
    is_first_party: bool

    @classmethod
    def of(cls, client: Client) -> "ClientOut":
        """Map the core dataclass."""
        return cls(
            client_id=client.client_id,
            name=client.name,
            is_public=client.is_public,
            grant_types=sorted(client.grant_types),
            redirect_uris=list(client.redirect_uris),
            scopes=sorted(client.scopes),
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            is_first_party=client.is_first_party,
        )


class ClientCreated(ClientOut):
    """A new client with its secret, shown this once (``null`` for public clients)."""

    client_secret: str | None


class ClientSecret(BaseModel):
    """A rotated secret, shown this once."""

    client_id: str
    client_secret: str


class UserIn(BaseModel):
    """A new user."""

    model_config = _STRICT

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    is_admin: bool = False


class PasswordIn(BaseModel):
    """A new password set by an administrator."""

    model_config = _STRICT

    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    """A user (never the password hash)."""

    id: str
    email: str
    is_active: bool
    is_admin: bool

    @classmethod
    def of(cls, user: User) -> "UserOut":
        """Map the core dataclass."""
        return cls(
            id=user.id,
            email=user.email,
            is_active=user.is_active,
            is_admin=user.is_admin,
        )


class ScopeIn(BaseModel):
    """A new scope (RFC 6749 §3.3 token syntax)."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=512)


class ScopeOut(BaseModel):
    """A scope and its consent-page description."""

    name: str
    description: str

    @classmethod
    def of(cls, scope: Scope) -> "ScopeOut":
        """Map the service dataclass."""
        return cls(name=scope.name, description=scope.description)


class PageOut(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next (``null`` at the end)."""

    items: list[T]
    next_cursor: str | None
