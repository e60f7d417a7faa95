"""Client bodies of the admin API, in RFC 7591 client-metadata names (§2, §3.2.1; see ``oauth.client_metadata``).

Every field carries a description and an example for ``/openapi.json``. The names used before RFC 7591's
(``name``, ``scopes``, ``is_public``, ``is_first_party``) are refused with a 422 whose field error says what to
send instead.
"""

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError

from oauth_service.api.admin.client_fields import (
    SECRET_EXAMPLE,
    AuthMethodIn,
    BackchannelLogoutUriField,
    BackchannelSessionRequiredField,
    ClientIdField,
    ClientNameField,
    FirstPartyField,
    GrantTypesField,
    PostLogoutRedirectUrisField,
    RedirectUrisField,
    ScopeField,
    SecretExpiresField,
    SecretField,
)
from oauth_service.oauth.client_metadata import (
    RENAMED_FIELDS,
    RegisteredAuthMethod,
    client_metadata,
)
from oauth_service.oauth.models import Client


def _refuse_renamed(model: str, data: Any) -> Any:
    """Fail with one field error per old name, each saying what to send instead."""
    if not isinstance(data, dict):
        return data
    errors = [
        InitErrorDetails(
            type=PydanticCustomError("renamed_field", hint),
            loc=(old,),
            input=data[old],
        )
        for old, hint in RENAMED_FIELDS.items()
        if old in data
    ]
    if errors:
        # A ValidationError raised in a validator keeps its field locations (a ValueError would not).
        raise ValidationError.from_exception_data(model, errors)
    return data


class _ClientBody(BaseModel):
    """What registration and update share: old names and a scope list get a 422 saying what to send."""

    @model_validator(mode="before")
    @classmethod
    def refuse_renamed(cls, data: Any) -> Any:
        """Refuse the names used before RFC 7591's."""
        return _refuse_renamed(cls.__name__, data)

    @field_validator("scope", mode="before", check_fields=False)
    @classmethod
    def refuse_scope_list(cls, value: Any) -> Any:
        """Refuse ``["read", "write"]`` with the form to use (the old ``scopes`` was a list)."""
        if isinstance(value, list):
            raise PydanticCustomError(
                "scope_string",
                'scope is one space-separated string, such as "read write", not a list',
            )
        return value


class ClientIn(_ClientBody):
    """A client registration (RFC 7591 §2 names)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "client_name": "Billing",
                    "grant_types": ["client_credentials"],
                    "scope": "read",
                },
                {
                    "client_name": "Mobile app",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "redirect_uris": ["com.example.app:/callback"],
                    "scope": "read write",
                    "token_endpoint_auth_method": "none",
                },
            ]
        },
    )

    client_name: ClientNameField
    grant_types: GrantTypesField
    redirect_uris: RedirectUrisField = []
    scope: ScopeField = ""
    token_endpoint_auth_method: AuthMethodIn = "client_secret_basic"
    first_party: FirstPartyField = False
    post_logout_redirect_uris: PostLogoutRedirectUrisField = []
    backchannel_logout_uri: BackchannelLogoutUriField = None
    backchannel_logout_session_required: BackchannelSessionRequiredField = False
    client_id: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=255,
            description="A fixed client_id; omitted, a random one is issued.",
            examples=["billing"],
        ),
    ] = None


def _patch_schema(schema: dict[str, Any]) -> None:
    # An optional field's description sits on the non-null branch of its anyOf, where Swagger UI does not show
    # it: lift it (and the example) to the property.
    for prop in schema["properties"].values():
        for branch in prop.get("anyOf", []):
            for key in ("description", "examples"):
                if key in branch:
                    prop[key] = branch.pop(key)
    schema["examples"] = [{"client_name": "Billing (EU)", "scope": "read write"}]


class ClientPatch(_ClientBody):
    """Fields to change on a client; omitted fields keep their value.

    ``token_endpoint_auth_method`` may be sent (say, a read registration sent back) but cannot turn a public
    client into a confidential one or back: register a new client instead.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    client_name: ClientNameField | None = None
    grant_types: GrantTypesField | None = None
    redirect_uris: RedirectUrisField | None = None
    scope: ScopeField | None = None
    token_endpoint_auth_method: AuthMethodIn | None = None
    first_party: FirstPartyField | None = None
    post_logout_redirect_uris: PostLogoutRedirectUrisField | None = None
    backchannel_logout_uri: BackchannelLogoutUriField = None
    backchannel_logout_session_required: BackchannelSessionRequiredField | None = None


_CLIENT_EXAMPLE: dict[str, Any] = {
    "client_id": "billing",
    "client_name": "Billing",
    "scope": "read",
    "grant_types": ["client_credentials"],
    "redirect_uris": [],
    "token_endpoint_auth_method": "client_secret_basic",
    "first_party": False,
    "post_logout_redirect_uris": [],
    "backchannel_logout_uri": None,
    "backchannel_logout_session_required": False,
    "client_id_issued_at": 1767225600,
}


class ClientOut(BaseModel):
    """A registered client (RFC 7591 §3.2.1 names; never its secret)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CLIENT_EXAMPLE]})

    client_id: ClientIdField
    client_name: ClientNameField
    scope: ScopeField
    grant_types: GrantTypesField
    redirect_uris: RedirectUrisField
    token_endpoint_auth_method: Annotated[
        RegisteredAuthMethod,
        Field(
            description="`none` for a public client; `client_secret_basic` for a confidential one, "
            "which may also use `client_secret_post`.",
            examples=["client_secret_basic"],
        ),
    ]
    first_party: FirstPartyField
    post_logout_redirect_uris: PostLogoutRedirectUrisField
    backchannel_logout_uri: BackchannelLogoutUriField
    backchannel_logout_session_required: BackchannelSessionRequiredField
    client_id_issued_at: Annotated[
        int,
        Field(
            description="When the client was registered, in seconds since the Unix epoch.",
            examples=[1767225600],
        ),
    ]

    @classmethod
    def of(cls, client: Client) -> "ClientOut":
        """Map the core dataclass."""
        return cls.model_validate(client_metadata(client))


class ClientCreated(ClientOut):
    """A new client; a confidential client's secret is here and only here (absent for public clients)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_CLIENT_EXAMPLE,
                    "client_secret": SECRET_EXAMPLE,
                    "client_secret_expires_at": 0,
                }
            ]
        }
    )

    # Absent rather than null when no secret was issued (RFC 7591 §3.2.1): the route sends the fields set.
    client_secret: SecretField | SkipJsonSchema[None] = None
    client_secret_expires_at: SecretExpiresField | SkipJsonSchema[None] = None


class ClientSecret(BaseModel):
    """A rotated secret, shown this once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "client_id": "billing",
                    "client_secret": SECRET_EXAMPLE,
                    "client_secret_expires_at": 0,
                }
            ]
        }
    )

    client_id: ClientIdField
    client_secret: SecretField
    client_secret_expires_at: SecretExpiresField
