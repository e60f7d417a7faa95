"""Documented field types of the admin API's client bodies (RFC 7591 §2, §3.2.1 names).

Each carries the description and example ``/openapi.json`` shows; ``client_models`` builds the
registration, update and response bodies from them.
"""

from typing import Annotated, Literal

from pydantic import Field

RequestedAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]

# The shape of a secret for the schema's examples; no client has it.
SECRET_EXAMPLE = "kX9v3Qm7yQ2c8nE4tR1wZp6uH0sJ5aLbD3fG7hK2mN8"

ClientNameField = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="Display name, shown on the consent page.",
        examples=["Billing"],
    ),
]
GrantTypesField = Annotated[
    list[str],
    Field(
        min_length=1,
        max_length=5,
        description="Grant types the client may use: authorization_code, implicit, password, "
        "client_credentials, refresh_token. refresh_token also needs authorization_code or password.",
        examples=[["authorization_code", "refresh_token"]],
    ),
]
RedirectUrisField = Annotated[
    list[str],
    Field(
        max_length=20,
        description="Absolute redirect URIs without fragment or userinfo: https, loopback http, or a "
        "reverse-DNS private-use scheme (RFC 8252 §7.1). Needed by authorization_code and implicit.",
        examples=[["https://app.example.com/callback"]],
    ),
]
ScopeField = Annotated[
    str,
    Field(
        max_length=16384,
        description="Space-separated scopes the client may request (RFC 6749 §3.3); each must exist "
        "(`/admin/scopes`).",
        examples=["read write"],
    ),
]
FirstPartyField = Annotated[
    bool,
    Field(
        description="Extension: a trusted client of this server's operator; its users are not asked "
        "for consent.",
        examples=[False],
    ),
]
PostLogoutRedirectUrisField = Annotated[
    list[str],
    Field(
        max_length=20,
        description="Where the end-session endpoint may send the browser after logout (OpenID Connect "
        "RP-Initiated Logout 1.0 §3.1), matched exactly; the same rules as redirect_uris.",
        examples=[["https://app.example.com/signed-out"]],
    ),
]
BackchannelLogoutUriField = Annotated[
    str | None,
    Field(
        max_length=2048,
        description="Where logout tokens are POSTed when a user's session ends (OpenID Connect "
        "Back-Channel Logout 1.0 §2.2): absolute https (http only for a loopback host), no fragment. "
        "In an update, an empty string removes it.",
        examples=["https://app.example.com/backchannel-logout"],
    ),
]
BackchannelSessionRequiredField = Annotated[
    bool,
    Field(
        description="Whether the client needs `sid` in logout tokens (Back-Channel Logout 1.0 §2.2); "
        "this server includes it whenever the session is known.",
        examples=[False],
    ),
]
AuthMethodIn = Annotated[
    RequestedAuthMethod,
    Field(
        description="`none` registers a public client (no secret: a browser or native app, PKCE). "
        "`client_secret_basic` (the default) or `client_secret_post` registers a confidential client, "
        "which may use either method at the token endpoint; it is recorded as `client_secret_basic`.",
        examples=["client_secret_basic"],
    ),
]
ClientIdField = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="The client identifier (RFC 6749 §2.2).",
        examples=["billing"],
    ),
]

SecretField = Annotated[
    str,
    Field(
        description="The client secret, shown this once (stored only as a hash).",
        examples=[SECRET_EXAMPLE],
    ),
]
SecretExpiresField = Annotated[
    int,
    Field(
        description="When the secret expires, in seconds since the epoch; 0: never (rotate it instead).",
        examples=[0],
    ),
]
