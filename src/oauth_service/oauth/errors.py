"""The OAuth error hierarchy, rendered in one place (``oauth_service.api.errors``).

RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 9207 (``iss`` on error redirects)::

    OAuthError
    ├── InvalidRequestError            invalid_request            400
    ├── InvalidClientError             invalid_client             401 (Basic) / 400
    ├── InvalidGrantError              invalid_grant              400
    ├── UnauthorizedClientError        unauthorized_client        400
    ├── UnsupportedGrantTypeError      unsupported_grant_type     400
    ├── UnsupportedResponseTypeError   unsupported_response_type  400 / redirect
    ├── InvalidScopeError              invalid_scope              400 / redirect
    ├── AccessDeniedError              access_denied              redirect
    ├── LoginRequiredError             login_required             redirect (prompt=none)
    ├── ConsentRequiredError           consent_required           redirect (prompt=none)
    ├── RequestNotSupportedError       request_not_supported      redirect (OIDC Core §3.1.2.6)
    ├── RequestUriNotSupportedError    request_uri_not_supported  redirect (OIDC Core §3.1.2.6)
    ├── RegistrationNotSupportedError  registration_not_supported redirect (OIDC Core §3.1.2.6)
    ├── ServerError                    server_error               500
    ├── TemporarilyUnavailableError    temporarily_unavailable    503
    └── BearerTokenError               (RFC 6750; WWW-Authenticate: Bearer)
        ├── InvalidTokenError          invalid_token              401
        └── InsufficientScopeError     insufficient_scope         403

``description`` is public and restricted to RFC 6749's character set; ``detail`` is private and only logged.
"""

import copy
import re
from dataclasses import dataclass
from typing import ClassVar

# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E (no '"' and no '\').
_DESCRIPTION_CHARS = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")


@dataclass(frozen=True, slots=True)
class ErrorRedirect:
    """Where an authorization error is sent once the redirect_uri is trusted (RFC 6749 §4.1.2.1)."""

    uri: str
    state: str | None
    fragment: bool
    issuer: str | None = None


class OAuthError(Exception):
    """Base class of every protocol error."""

    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400
    default_description: ClassVar[str | None] = None

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        redirect: ErrorRedirect | None = None,
    ) -> None:
        description = (
            description if description is not None else self.default_description
        )
        if description is not None and not _DESCRIPTION_CHARS.fullmatch(description):
            raise ValueError("error_description has characters RFC 6749 §5.2 forbids")
        super().__init__(description or self.error)
        self.description = description
        self.detail = detail
        self.redirect = redirect

    @property
    def http_status(self) -> int:
        """The HTTP status this error is rendered with (when not redirecting)."""
        return self.status_code

    def body(self) -> dict[str, str]:
        """Return the RFC-shaped error body."""
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body

    def headers(self) -> dict[str, str]:
        """Return extra response headers for this error."""
        return {}

    def with_redirect(self, redirect: ErrorRedirect) -> "OAuthError":
        """Return a copy of this error that will redirect (errors are never mutated after raising)."""
        clone = copy.copy(self)
        clone.redirect = redirect
        return clone


class InvalidRequestError(OAuthError):
    """A parameter is missing, repeated, malformed or unsupported."""

    error = "invalid_request"


class InvalidClientError(OAuthError):
    """Client authentication failed (RFC 6749 §5.2).

    When the client tried HTTP Basic the answer is 401 with a ``WWW-Authenticate: Basic`` challenge.
    """

    error = "invalid_client"
    default_description = "Client authentication failed."

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        used_basic: bool = False,
        realm: str = "oauth-service",
    ) -> None:
        super().__init__(description, detail=detail)
        self.used_basic = used_basic
        self.realm = realm

    @property
    def http_status(self) -> int:
        """401 when Basic was used (a challenge is owed), else 400."""
        return 401 if self.used_basic else 400

    def headers(self) -> dict[str, str]:
        """Challenge the client when it used HTTP Basic."""
        if self.used_basic:
            return {"WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'}
        return {}


class InvalidGrantError(OAuthError):
    """The grant (code, refresh token, password) is invalid, expired, revoked or foreign."""

    error = "invalid_grant"


class UnauthorizedClientError(OAuthError):
    """The client may not use this grant or response type."""

    error = "unauthorized_client"


class UnsupportedGrantTypeError(OAuthError):
    """The server does not support this grant type."""

    error = "unsupported_grant_type"


class UnsupportedResponseTypeError(OAuthError):
    """The server does not support this response type."""

    error = "unsupported_response_type"


class InvalidScopeError(OAuthError):
    """The scope is unknown, malformed, or wider than allowed."""

    error = "invalid_scope"


class AccessDeniedError(OAuthError):
    """The resource owner denied the request."""

    error = "access_denied"
    default_description = "The resource owner denied the request."


class LoginRequiredError(OAuthError):
    """``prompt=none`` but the user is not signed in (OpenID Connect Core §3.1.2.6)."""

    error = "login_required"


class ConsentRequiredError(OAuthError):
    """``prompt=none`` but consent is needed (OpenID Connect Core §3.1.2.6)."""

    error = "consent_required"


class RequestNotSupportedError(OAuthError):
    """A request object (``request``) was sent; this server does not support them (OIDC Core §3.1.2.6)."""

    error = "request_not_supported"
    default_description = "The request parameter is not supported."


class RequestUriNotSupportedError(OAuthError):
    """A ``request_uri`` was sent; this server does not support it (OIDC Core §3.1.2.6)."""

    error = "request_uri_not_supported"
    default_description = "The request_uri parameter is not supported."


class RegistrationNotSupportedError(OAuthError):
    """The ``registration`` parameter was sent; this server does not support it (OIDC Core §3.1.2.6)."""

    error = "registration_not_supported"
    default_description = "The registration parameter is not supported."


class ServerError(OAuthError):
    """An unexpected failure; the public text is fixed and ``detail`` goes only to logs."""

    error = "server_error"
    status_code = 500
    default_description = "The server encountered an unexpected condition."


class TemporarilyUnavailableError(OAuthError):
    """A dependency (the database) is unavailable; retry later."""

    error = "temporarily_unavailable"
    status_code = 503
    default_description = "The service is temporarily unavailable; retry later."


class BearerTokenError(OAuthError):
    """Errors of a protected resource (RFC 6750 §3)."""

    realm: ClassVar[str] = "oauth-service"

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(description, detail=detail)
        self.scope = scope

    def headers(self) -> dict[str, str]:
        """Build the ``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3)."""
        parts = [f'realm="{self.realm}"', f'error="{self.error}"']
        if self.description:
            parts.append(f'error_description="{self.description}"')
        if self.scope:
            parts.append(f'scope="{self.scope}"')
        return {"WWW-Authenticate": "Bearer " + ", ".join(parts)}


class MissingTokenError(BearerTokenError):
    """No credentials were sent: a bare challenge with no error code (RFC 6750 §3.1)."""

    error = "invalid_token"
    status_code = 401

    def body(self) -> dict[str, str]:
        """Keep the JSON body informative even though the challenge carries no error."""
        return {"error": "invalid_token", "error_description": "Bearer token required."}

    def headers(self) -> dict[str, str]:
        """RFC 6750 §3.1: no error code when the request lacked authentication."""
        return {"WWW-Authenticate": f'Bearer realm="{self.realm}"'}


class InvalidTokenError(BearerTokenError):
    """The access token is expired, revoked, malformed or invalid."""

    error = "invalid_token"
    status_code = 401
    default_description = "The access token is invalid."


class InsufficientScopeError(BearerTokenError):
    """The token lacks a scope the resource needs."""

    error = "insufficient_scope"
    status_code = 403
    default_description = "The access token lacks a required scope."
