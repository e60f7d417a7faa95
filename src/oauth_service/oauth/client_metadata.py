"""A registered client in RFC 7591 client-metadata names: the one vocabulary of the admin API and the CLI.

RFC 7591 §2 names the fields (``client_name``, ``scope`` as one space-separated string, ``grant_types``,
``redirect_uris``, ``token_endpoint_auth_method``) and §3.2.1 the server-issued ones (``client_id_issued_at``,
``client_secret_expires_at``), OpenID Connect's logout registration adds ``post_logout_redirect_uris``,
``backchannel_logout_uri`` and ``backchannel_logout_session_required``. ``first_party`` is this server's extension: consent is not asked. Speaking these
names now means dynamic registration will not need a second vocabulary.

Public or confidential is not a field of its own: it is ``token_endpoint_auth_method``, ``none`` for a public
client. The token endpoint accepts ``client_secret_basic`` and ``client_secret_post`` from every confidential
client (RFC 6749 §2.3.1 lets the server support both), so ``client_secret_post`` is accepted on registration as
"confidential" and the registered value is always ``client_secret_basic``, the method RFC 6749 requires servers
to support. RFC 7591 §2 allows the server to replace a requested value; recording ``client_secret_post`` would
promise a restriction that is not enforced.
"""

from collections.abc import Mapping
from typing import Any, Final, Literal

from oauth_service.oauth.models import AuthMethod, Client

# The admin API's names before RFC 7591's, each with what to send instead. Refused with a 422 naming the new
# field rather than accepted as aliases: one request, one meaning (a body with both "scope" and "scopes" has none).
RENAMED_FIELDS: Final[Mapping[str, str]] = {
    "name": "renamed: send 'client_name'",
    "scopes": "renamed: send 'scope', one space-separated string such as \"read write\"",
    "is_public": "replaced: send 'token_endpoint_auth_method': 'none' for a public client "
    "(no secret), 'client_secret_basic' for a confidential one",
    "is_first_party": "renamed: send 'first_party'",
}

RegisteredAuthMethod = Literal["client_secret_basic", "none"]

# A confidential client's secret never expires on its own: rotate it instead (RFC 7591 §3.2.1: 0 = never).
SECRET_NEVER_EXPIRES: Final = 0


def is_public_method(method: AuthMethod) -> bool:
    """Whether a requested ``token_endpoint_auth_method`` registers a public client (no secret)."""
    return method == "none"


def registered_auth_method(client: Client) -> RegisteredAuthMethod:
    """The method reported for a client: derived from public/confidential (see the module docstring)."""
    return "none" if client.is_public else "client_secret_basic"


def split_scope_field(scope: str) -> list[str]:
    """The scope names of a ``scope`` field (RFC 6749 §3.3: space-separated; syntax is checked on registration)."""
    return [token for token in scope.split(" ") if token]


def client_metadata(client: Client) -> dict[str, Any]:
    """A client's registration in RFC 7591 names, JSON-ready (never its secret or the secret's hash)."""
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": client.name,
        "scope": " ".join(sorted(client.scopes)),
        "grant_types": sorted(client.grant_types),
        "redirect_uris": list(client.redirect_uris),
        "token_endpoint_auth_method": registered_auth_method(client),
        "first_party": client.is_first_party,
        # OpenID Connect RP-Initiated Logout 1.0 §3.1 and Back-Channel Logout 1.0 §2.2 names.
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
    }
    if client.issued_at is not None:
        body["client_id_issued_at"] = int(client.issued_at.timestamp())
    return body
