"""Users, scopes and page bodies of the admin API (pydantic at the edge; the core keeps its dataclasses).

Client bodies are in ``client_models``. Every field carries a description and an example for
``/openapi.json``.
"""

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from oauth_service.db.admin import Scope
from oauth_service.oauth.models import User, UserProfile

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


def _claim(description: str, example: str, max_length: int) -> Any:
    return Field(max_length=max_length, description=description, examples=[example])


# OpenID Connect Core §5.1 standard claims, released by UserInfo and ID tokens per scope. Lengths are the
# ``users`` table's (422 beyond); the rules of ``oidc.profile_rules`` answer 400. An empty string clears.
NameField = Annotated[str, _claim("Full name.", "Alice Liddell", 255)]
GivenNameField = Annotated[str, _claim("Given name.", "Alice", 255)]
FamilyNameField = Annotated[str, _claim("Family name.", "Liddell", 255)]
PreferredUsernameField = Annotated[str, _claim("Preferred username.", "alice", 255)]
PictureField = Annotated[
    str,
    _claim("Profile picture: an http or https URL.", "https://img.example/a.png", 2048),
]
LocaleField = Annotated[
    str, _claim("BCP 47 language tag (`en`, `en-US`).", "en-US", 35)
]
ZoneinfoField = Annotated[str, _claim("IANA time zone name.", "Europe/London", 64)]
EmailVerifiedField = Annotated[
    bool,
    Field(
        description="Whether the email address was verified (the `email_verified` claim).",
        examples=[True],
    ),
]
# The claim fields of the bodies below, in claim order.
CLAIM_FIELDS = (
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "picture",
    "locale",
    "zoneinfo",
    "email_verified",
)


def _lift_descriptions(schema: dict[str, Any]) -> None:
    # An optional field's description sits on the non-null branch of its anyOf, where Swagger UI does not show
    # it: lift it (and the example) to the property.
    for prop in schema["properties"].values():
        for branch in prop.get("anyOf", []):
            for key in ("description", "examples"):
                if key in branch:
                    prop[key] = branch.pop(key)


def _user_in_schema(schema: dict[str, Any]) -> None:
    _lift_descriptions(schema)
    schema["examples"] = [
        {
            "email": "alice@example.com",
            "password": _PASSWORD_EXAMPLE,
            "name": "Alice Liddell",
            "locale": "en-GB",
            "email_verified": True,
        }
    ]


def _user_out_schema(schema: dict[str, Any]) -> None:
    _lift_descriptions(schema)
    schema["examples"] = [
        {
            "id": _USER_ID,
            "email": "alice@example.com",
            "is_active": True,
            "is_admin": False,
            "name": "Alice Liddell",
            "given_name": "Alice",
            "family_name": "Liddell",
            "preferred_username": "alice",
            "picture": None,
            "locale": "en-GB",
            "zoneinfo": "Europe/London",
            "email_verified": True,
            "updated_at": 1767225600,
        }
    ]


def _user_patch_schema(schema: dict[str, Any]) -> None:
    _lift_descriptions(schema)
    schema["examples"] = [{"name": "Alice Liddell", "picture": ""}]


class UserIn(BaseModel):
    """A new user, with the standard claims to release about them (all optional)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_user_in_schema)

    email: EmailField
    password: PasswordField
    is_admin: IsAdminField = False
    name: NameField | None = None
    given_name: GivenNameField | None = None
    family_name: FamilyNameField | None = None
    preferred_username: PreferredUsernameField | None = None
    picture: PictureField | None = None
    locale: LocaleField | None = None
    zoneinfo: ZoneinfoField | None = None
    email_verified: EmailVerifiedField = False

    def claims(self) -> dict[str, str | bool | None]:
        """The standard claims given (None: not given)."""
        return {name: getattr(self, name) for name in CLAIM_FIELDS}


class UserPatch(BaseModel):
    """Standard claims to change; omitted fields keep their value, `null` or `""` clears one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_user_patch_schema)

    name: NameField | None = None
    given_name: GivenNameField | None = None
    family_name: FamilyNameField | None = None
    preferred_username: PreferredUsernameField | None = None
    picture: PictureField | None = None
    locale: LocaleField | None = None
    zoneinfo: ZoneinfoField | None = None
    email_verified: EmailVerifiedField | None = None

    def changes(self) -> dict[str, str | bool | None]:
        """The fields the body sent (``email_verified: null`` is refused by ``db.admin``'s rules)."""
        return {
            name: getattr(self, name)
            for name in CLAIM_FIELDS
            if name in self.model_fields_set
        }


class PasswordIn(BaseModel):
    """A new password set by an administrator."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"password": _PASSWORD_EXAMPLE}]},
    )

    password: PasswordField


class UserOut(BaseModel):
    """A user (never the password hash) and their standard claims (null when unset)."""

    model_config = ConfigDict(json_schema_extra=_user_out_schema)

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
    name: NameField | None
    given_name: GivenNameField | None
    family_name: FamilyNameField | None
    preferred_username: PreferredUsernameField | None
    picture: PictureField | None
    locale: LocaleField | None
    zoneinfo: ZoneinfoField | None
    email_verified: EmailVerifiedField
    updated_at: Annotated[
        int,
        Field(
            description="When the user's account or claims last changed, in seconds since the epoch (the "
            "`updated_at` claim).",
            examples=[1767225600],
        ),
    ]

    @classmethod
    def of(cls, user: User, profile: UserProfile) -> "UserOut":
        """Map the core dataclasses (the account and its standard claims)."""
        return cls(
            id=user.id,
            email=user.email,
            is_active=user.is_active,
            is_admin=user.is_admin,
            name=profile.name,
            given_name=profile.given_name,
            family_name=profile.family_name,
            preferred_username=profile.preferred_username,
            picture=profile.picture,
            locale=profile.locale,
            zoneinfo=profile.zoneinfo,
            email_verified=profile.email_verified,
            updated_at=profile.claim("updated_at"),
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
