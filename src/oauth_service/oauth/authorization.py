"""Validation of authorization requests: RFC 6749 §3.1, §4.1.1, §4.1.2.1, §4.2.1, §4.2.2.1, RFC 7636 §4.3.

Also RFC 9207 §2 (``iss``) and RFC 8252 §7.3 (loopback redirect URIs).

Order matters: the client must exist and the redirect URI must be registered before any error may be sent to it.
Until both pass every error is shown to the user (never redirected); afterwards each error carries an
``ErrorRedirect`` built once here, with ``state`` and ``iss``, in the query (``code``) or fragment (``token``).
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oauth_service.oauth import pkce
from oauth_service.oauth.errors import (
    ErrorRedirect,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuthError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)
from oauth_service.oauth.models import Client
from oauth_service.oauth.redirect_uris import resolve_redirect_uri
from oauth_service.oauth.scopes import ADMIN_SCOPE, format_scope, parse_scope
from oauth_service.oauth.storage import ClientStore

# Which grant a client needs for each response type (RFC 6749 §4.1, §4.2).
RESPONSE_TYPE_GRANTS: Mapping[str, str] = {
    "code": "authorization_code",
    "token": "implicit",
}
PROMPTS = frozenset({"none", "login", "consent"})
# The parameters this endpoint reads: only these names may appear in an error_description, which travels to
# the client's redirect URI. Any other name is the sender's text, and would let a crafted link put words of
# the attacker's choosing on the client's page (or, with a quote in the name, break the description charset).
PARAMETERS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "prompt",
    }
)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request, carried across the login and consent pages.

    ``redirect_uri`` is where responses go; ``redirect_uri_param`` is the parameter as sent (None when absent),
    which the code is bound to (RFC 6749 §4.1.3).
    """

    client_id: str
    response_type: str
    redirect_uri: str
    scope: frozenset[str]
    issuer: str
    state: str | None = None
    redirect_uri_param: str | None = None
    code_challenge: str | None = field(default=None, repr=False)
    code_challenge_method: str | None = None
    prompt: frozenset[str] = frozenset()

    @property
    def uses_fragment(self) -> bool:
        """The implicit grant answers in the fragment (RFC 6749 §4.2.2)."""
        return self.response_type == "token"

    def error_redirect(self) -> ErrorRedirect:
        """Where errors about this request are sent."""
        return ErrorRedirect(
            self.redirect_uri, self.state, self.uses_fragment, self.issuer
        )

    def to_params(self) -> dict[str, Any]:
        """Serialize for server-side storage between pages."""
        return {
            "client_id": self.client_id,
            "response_type": self.response_type,
            "redirect_uri": self.redirect_uri,
            "scope": format_scope(self.scope),
            "issuer": self.issuer,
            "state": self.state,
            "redirect_uri_param": self.redirect_uri_param,
            "code_challenge": self.code_challenge,
            "code_challenge_method": self.code_challenge_method,
            "prompt": sorted(self.prompt),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "AuthorizationRequest":
        """Rebuild a request stored by ``to_params``."""
        return cls(
            client_id=params["client_id"],
            response_type=params["response_type"],
            redirect_uri=params["redirect_uri"],
            scope=parse_scope(params["scope"]),
            issuer=params["issuer"],
            state=params["state"],
            redirect_uri_param=params["redirect_uri_param"],
            code_challenge=params["code_challenge"],
            code_challenge_method=params["code_challenge_method"],
            prompt=frozenset(params["prompt"]),
        )


def _group(params: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    return grouped


def _repeated(name: str) -> InvalidRequestError:
    if name in PARAMETERS:
        return InvalidRequestError(f"The '{name}' parameter is repeated.")
    return InvalidRequestError("A parameter is repeated.")


def _single(grouped: Mapping[str, list[str]], name: str) -> str | None:
    """Return a parameter's value; empty counts as absent (RFC 6749 §3.1); repeated is an error."""
    values = grouped.get(name, [])
    if len(values) > 1:
        raise _repeated(name)
    return values[0] or None if values else None


async def _trusted_target(
    grouped: Mapping[str, list[str]], clients: ClientStore
) -> tuple[Client, str, str | None]:
    """Steps 1 and 2: client exists, redirect URI registered. Errors here are never redirected."""
    client_id = _single(grouped, "client_id")
    if client_id is None:
        raise InvalidRequestError("Missing 'client_id' parameter.")
    client = await clients.get(client_id)
    if client is None:
        raise InvalidClientError("Unknown client.")
    redirect_param = _single(grouped, "redirect_uri")
    return client, resolve_redirect_uri(client, redirect_param), redirect_param


def _response_type(
    grouped: Mapping[str, list[str]], client: Client, enabled: Collection[str]
) -> str:
    response_type = _single(grouped, "response_type")
    if response_type is None:
        raise InvalidRequestError("Missing 'response_type' parameter.")
    if response_type not in enabled or response_type not in RESPONSE_TYPE_GRANTS:
        raise UnsupportedResponseTypeError("Unsupported response_type.")
    if RESPONSE_TYPE_GRANTS[response_type] not in client.grant_types:
        raise UnauthorizedClientError("The client may not use this response_type.")
    return response_type


def _scope(raw: str | None, client: Client) -> frozenset[str]:
    """RFC 6749 §3.3: absent means the client's default (its scopes, minus ``admin``, which must be asked for)."""
    if raw is None:
        return client.scopes - {ADMIN_SCOPE}
    scope = parse_scope(raw)
    if not scope <= client.scopes:
        raise InvalidScopeError(
            "The requested scope exceeds what the client may ask for."
        )
    return scope


def _prompt(raw: str | None) -> frozenset[str]:
    prompt = frozenset(raw.split()) if raw else frozenset()
    if not prompt <= PROMPTS:
        raise InvalidRequestError("Unsupported prompt value.")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values.")
    return prompt


def _pkce(
    grouped: Mapping[str, list[str]], client: Client, *, allow_plain: bool
) -> tuple[str | None, str | None]:
    challenge = _single(grouped, "code_challenge")
    method = _single(grouped, "code_challenge_method")
    if challenge is None:
        if method is not None:
            raise InvalidRequestError("code_challenge_method without code_challenge.")
        if client.is_public:
            raise InvalidRequestError("PKCE is required: send code_challenge (S256).")
        return None, None
    return pkce.validate_challenge(challenge, method, allow_plain=allow_plain)


async def validate_authorization_request(
    params: Sequence[tuple[str, str]],
    *,
    clients: ClientStore,
    issuer: str,
    response_types: Collection[str],
    allow_plain_pkce: bool,
) -> AuthorizationRequest:
    """Validate the query of ``GET /oauth/authorize`` in the order RFC 6749 §4.1.2.1 requires.

    Args:
        params: every (name, value) pair of the query, repeats included.
        clients: where the client is looked up.
        issuer: this server's issuer, sent as ``iss`` (RFC 9207).
        response_types: the response types the server has enabled.
        allow_plain_pkce: whether ``code_challenge_method=plain`` is accepted.

    Raises:
        OAuthError: without a redirect before the redirect URI is trusted, with one afterwards.
    """
    grouped = _group(params)
    client, redirect_uri, redirect_param = await _trusted_target(grouped, clients)
    states = grouped.get("state", [])
    raw_type = grouped.get("response_type", [""])[0]
    redirect = ErrorRedirect(
        redirect_uri, states[0] if states else None, raw_type == "token", issuer
    )
    try:
        response_type = _response_type(grouped, client, response_types)
        scope = _scope(_single(grouped, "scope"), client)
        prompt = _prompt(_single(grouped, "prompt"))
        state = _single(grouped, "state")
        challenge, method = (None, None)
        if response_type == "code":
            challenge, method = _pkce(grouped, client, allow_plain=allow_plain_pkce)
        for name, values in grouped.items():
            if len(values) > 1:
                raise _repeated(name)
    except OAuthError as exc:
        raise exc.with_redirect(redirect) from None
    return AuthorizationRequest(
        client_id=client.client_id,
        response_type=response_type,
        redirect_uri=redirect_uri,
        scope=scope,
        issuer=issuer,
        state=state,
        redirect_uri_param=redirect_param,
        code_challenge=challenge,
        code_challenge_method=method,
        prompt=prompt,
    )
