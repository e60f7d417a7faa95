"""Value objects the protocol core works on (frozen dataclasses, not tables).

Secrets are excluded from ``repr`` so they never reach a log line by accident.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from oauth_service.oauth.errors import InvalidRequestError
from oauth_service.oauth.scopes import parse_scope

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]

GRANT_TYPES: frozenset[str] = frozenset(
    {
        "authorization_code",
        "implicit",
        "password",
        "client_credentials",
        "refresh_token",
    }
)


@dataclass(frozen=True, slots=True)
class Client:
    """A registered OAuth client (RFC 6749 §2)."""

    client_id: str
    name: str
    is_public: bool
    grant_types: frozenset[str]
    redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"
    is_first_party: bool = False
    secret_hash: str | None = field(default=None, repr=False)
    # When the client_id was registered (RFC 7591 client_id_issued_at); None for clients built outside the
    # database. Not compared: two reads of one registration are the same client.
    issued_at: datetime | None = field(default=None, compare=False)
    # OpenID Connect RP-Initiated Logout §3.1: where the end-session endpoint may send the browser back.
    post_logout_redirect_uris: tuple[str, ...] = ()
    # OpenID Connect Back-Channel Logout §2.2: where logout tokens are POSTed, and whether they carry ``sid``.
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False


@dataclass(frozen=True, slots=True)
class User:
    """A resource owner."""

    id: str
    email: str
    is_active: bool = True
    is_admin: bool = False
    password_hash: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class UserProfile:
    """A user's standard claims (OpenID Connect Core §5.1) as stored; None is an unset claim, never released."""

    subject: str
    email: str
    email_verified: bool = False
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    preferred_username: str | None = None
    picture: str | None = None
    locale: str | None = None
    zoneinfo: str | None = None
    updated_at: datetime | None = None

    def claim(self, name: str) -> Any:
        """The claim's JSON value (``updated_at`` in seconds since the epoch, §5.1), or None when unset."""
        value = getattr(self, name)
        if isinstance(value, datetime):
            return int(value.timestamp())
        return value


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """How the client presented itself on this request (RFC 6749 §2.3)."""

    client_id: str | None
    client_secret: str | None = field(default=None, repr=False)
    method: AuthMethod = "none"


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A parsed token-endpoint request (RFC 6749 §4.1.3, §4.3.2, §4.4.2, §6)."""

    grant_type: str
    credentials: ClientCredentials
    scope: frozenset[str] | None = None
    code: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    code_verifier: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    email: str | None = None
    password: str | None = field(default=None, repr=False)
    client_ip: str | None = None

    @classmethod
    def from_form(
        cls,
        form: Mapping[str, str],
        credentials: ClientCredentials,
        *,
        client_ip: str | None = None,
    ) -> "TokenRequest":
        """Build a request from an already de-duplicated form."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequestError("Missing 'grant_type' parameter.")
        raw_scope = form.get("scope")
        email = form.get("email")
        username = form.get("username")
        if email is not None and username is not None and email != username:
            raise InvalidRequestError(
                "'email' and 'username' disagree; send one of them."
            )
        return cls(
            grant_type=grant_type,
            credentials=credentials,
            scope=parse_scope(raw_scope) if raw_scope is not None else None,
            code=form.get("code"),
            redirect_uri=form.get("redirect_uri"),
            code_verifier=form.get("code_verifier"),
            refresh_token=form.get("refresh_token"),
            email=email if email is not None else username,
            password=form.get("password"),
            client_ip=client_ip,
        )

    def require(self, name: str) -> str:
        """Return a parameter's value, or raise ``invalid_request`` naming it."""
        value = getattr(self, name)
        if not isinstance(value, str) or value == "":
            wire = "email" if name == "email" else name
            raise InvalidRequestError(f"Missing '{wire}' parameter.")
        return value


@dataclass(frozen=True, slots=True)
class Authentication:
    """A user's sign-in behind a token: who, when, how, in which browser session, for which request.

    What an OpenID Connect ID token asserts (``oidc.id_tokens``); ``nonce`` only from the authorization request
    a code answers, never on refresh (Core §12.2).
    """

    subject: str
    auth_time: datetime | None
    sid: str | None = None
    nonce: str | None = field(default=None, repr=False)
    amr: tuple[str, ...] = ("pwd",)


# The RFC 6749 §5.1 members a ``TokenSet`` writes itself; ``extra`` may not replace them.
_MEMBERS = frozenset(
    {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
)


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a grant issues: the RFC 6749 §5.1 response, open to what later features add.

    ``token_type`` is a field (a sender-constrained token is not ``Bearer``) and ``extra`` carries further
    response members (an ID token, ``issued_token_type``) so they need no change to the grants.
    """

    access_token: str = field(repr=False)
    expires_in: int
    scope: str
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)
    jti: str = ""
    # For the ``token.issued`` audit event; not part of the JSON body.
    subject: str = ""
    client_id: str = ""
    # The user's sign-in, when a user is behind the token: what an ID token is minted from (not serialized).
    authentication: Authentication | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        clash = _MEMBERS.intersection(self.extra)
        if clash:
            raise ValueError(f"extra members may not replace {sorted(clash)}")

    def as_dict(self) -> dict[str, str | int]:
        """Return the JSON body."""
        body: dict[str, str | int] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        body.update(self.extra)
        return body
