"""Validation of authorization requests: RFC 6749 §3.1, §4.1.1, §4.1.2.1, §4.2.1, §4.2.2.1, RFC 7636 §4.3.

Also RFC 9207 §2 (``iss``), RFC 8252 §7.3 (loopback redirect URIs), OpenID Connect Core §3.1.2.1 and §3.2.2.1
(``nonce``, ``prompt``, ``max_age``, ``id_token_hint``, ``login_hint``, ``display``, the ``id_token`` response
types) and OAuth 2.0 Multiple Response Type Encoding Practices §2.1, §5 (``response_mode``, space-separated
response types compared as sets).

Order matters: the client must exist and the redirect URI must be registered before any error may be sent to it.
Until both pass every error is shown to the user (never redirected); afterwards each error carries an
``ErrorRedirect`` built once here, with ``state`` and ``iss``, in the query (``code``) or the fragment (a
response type that returns a token, or ``response_mode=fragment``).

The core imports no JOSE: checking an ``id_token_hint``'s signature is the ``OpenIdPolicy``'s ``read_hint``,
which ``oidc.authorization_params`` builds over the server's keys.
"""

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from oauth_service.oauth import pkce
from oauth_service.oauth.errors import (
    ErrorRedirect,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuthError,
    RegistrationNotSupportedError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)
from oauth_service.oauth.models import Client
from oauth_service.oauth.redirect_uris import resolve_redirect_uri
from oauth_service.oauth.scopes import ADMIN_SCOPE, format_scope, parse_scope
from oauth_service.oauth.storage import ClientStore

# Which grant a client needs for each response type (RFC 6749 §4.1, §4.2; OIDC Core §3.2). Keys are the
# canonical spelling: the values sorted and joined by one space (``token id_token`` is ``id_token token``).
RESPONSE_TYPE_GRANTS: Mapping[str, str] = {
    "code": "authorization_code",
    "token": "implicit",
    "id_token": "implicit",
    "id_token token": "implicit",
}
OPENID_SCOPE = "openid"
# OIDC Core §3.1.2.1; ``select_account`` is honoured as ``login`` (one account per browser session here).
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
DISPLAYS = frozenset({"page", "popup", "touch", "wap"})
# A max_age beyond this (about 31 years) means "any session": capped so the arithmetic stays in range.
MAX_AGE_CAP = 1_000_000_000
_DIGITS = re.compile(r"[0-9]{1,18}")
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
        "response_mode",
        "nonce",
        "max_age",
        "login_hint",
        "id_token_hint",
        "ui_locales",
        "display",
        "acr_values",
        "claims",
        "request",
        "request_uri",
        "registration",
    }
)


class VerifiedHint(Protocol):
    """An ``id_token_hint`` whose signature and issuer were checked (``oidc.id_tokens.IdTokenHint``)."""

    @property
    def subject(self) -> str:
        """The user the hint names (``sub``)."""
        ...

    @property
    def audiences(self) -> tuple[str, ...]:
        """The clients it was issued to (``aud``)."""
        ...


@dataclass(frozen=True, slots=True)
class OpenIdPolicy:
    """What the OpenID Connect parameters need from outside the core.

    ``read_hint`` returns the verified hint, or None when it is not an ID token this server issued;
    ``max_nonce_length`` bounds the ``nonce`` stored with a code.
    """

    read_hint: Callable[[str], VerifiedHint | None]
    max_nonce_length: int


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request, carried across the login and consent pages.

    ``redirect_uri`` is where responses go; ``redirect_uri_param`` is the parameter as sent (None when absent),
    which the code is bound to (RFC 6749 §4.1.3). ``response_type`` is canonical (values sorted, one space).
    ``response_mode`` is as sent (None: the response type's default). ``hint_subject`` is the ``sub`` of a
    verified ``id_token_hint``; the hint itself is not kept.
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
    response_mode: str | None = None
    nonce: str | None = field(default=None, repr=False)
    max_age: int | None = None
    login_hint: str | None = None
    hint_subject: str | None = None

    @property
    def uses_fragment(self) -> bool:
        """Token-bearing responses answer in the fragment (RFC 6749 §4.2.2), or any when asked to."""
        if self.response_mode is not None:
            return self.response_mode == "fragment"
        return self.response_type != "code"

    @property
    def is_openid(self) -> bool:
        """An OpenID Connect request: ``openid`` is in the scope (OIDC Core §3.1.2.1)."""
        return OPENID_SCOPE in self.scope

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
            "response_mode": self.response_mode,
            "nonce": self.nonce,
            "max_age": self.max_age,
            "login_hint": self.login_hint,
            "hint_subject": self.hint_subject,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "AuthorizationRequest":
        """Rebuild a request stored by ``to_params`` (a request stored before the OIDC members has none)."""
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
            response_mode=params.get("response_mode"),
            nonce=params.get("nonce"),
            max_age=params.get("max_age"),
            login_hint=params.get("login_hint"),
            hint_subject=params.get("hint_subject"),
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


def canonical_response_type(raw: str) -> str:
    """The response type's values as a set, sorted and joined by one space (Multiple Response Types §2.1)."""
    return " ".join(sorted(set(raw.split())))


def _fragment_before_validation(grouped: Mapping[str, list[str]]) -> bool:
    """Where an error goes before the response type and mode are validated: their defaults, or as asked."""
    types = set(grouped.get("response_type", [""])[0].split())
    modes = grouped.get("response_mode", [])
    return bool(types & {"token", "id_token"}) or (
        bool(modes) and modes[0] == "fragment"
    )


def _unsupported_extensions(grouped: Mapping[str, list[str]]) -> None:
    """Request objects and self-issued registration are not supported (OIDC Core §3.1.2.6, §6)."""
    if _single(grouped, "request") is not None:
        raise RequestNotSupportedError()
    if _single(grouped, "request_uri") is not None:
        raise RequestUriNotSupportedError()
    if _single(grouped, "registration") is not None:
        raise RegistrationNotSupportedError()
    if _single(grouped, "claims") is not None:
        raise InvalidRequestError("The claims parameter is not supported.")


def _response_type(
    grouped: Mapping[str, list[str]], client: Client, enabled: Collection[str]
) -> str:
    raw = _single(grouped, "response_type")
    if raw is None:
        raise InvalidRequestError("Missing 'response_type' parameter.")
    response_type = canonical_response_type(raw)
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


def _response_mode(raw: str | None, response_type: str) -> str | None:
    """``query`` only for ``code``: a token in a query string would reach logs and Referer (§5)."""
    if raw is None or raw == "fragment":
        return raw
    if raw == "query":
        if response_type != "code":
            raise InvalidRequestError(
                "response_mode=query is not allowed with this response_type."
            )
        return raw
    raise InvalidRequestError("Unsupported response_mode.")


def _prompt(raw: str | None) -> frozenset[str]:
    prompt = frozenset(raw.split()) if raw else frozenset()
    if not prompt <= PROMPTS:
        raise InvalidRequestError("Unsupported prompt value.")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values.")
    if "select_account" in prompt:
        return (prompt - {"select_account"}) | {"login"}
    return prompt


def _nonce(
    raw: str | None, response_type: str, scope: frozenset[str], max_length: int
) -> str | None:
    """OIDC Core §3.2.2.1: a response type that returns an ID token needs ``openid`` and a ``nonce``."""
    if "id_token" in response_type.split():
        if OPENID_SCOPE not in scope:
            raise InvalidRequestError(
                "The id_token response types require the openid scope."
            )
        if raw is None:
            raise InvalidRequestError(
                "The nonce parameter is required with this response_type."
            )
    if raw is not None and len(raw) > max_length:
        raise InvalidRequestError("The nonce parameter is too long.")
    return raw


def _max_age(raw: str | None) -> int | None:
    """OIDC Core §3.1.2.1: allowable seconds since the user last authenticated; 0 means sign in now."""
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw):
        raise InvalidRequestError("max_age must be a non-negative integer.")
    return min(int(raw), MAX_AGE_CAP)


def _display(raw: str | None) -> None:
    if raw is not None and raw not in DISPLAYS:
        raise InvalidRequestError("Unsupported display value.")


def _hint_subject(raw: str | None, client: Client, policy: OpenIdPolicy) -> str | None:
    """OIDC Core §3.1.2.1: an ID token we issued to this client, expired or not; returns its ``sub``."""
    if raw is None:
        return None
    hint = policy.read_hint(raw)
    if hint is None:
        raise InvalidRequestError("id_token_hint is not valid.")
    if client.client_id not in hint.audiences:
        raise InvalidRequestError("id_token_hint was not issued to this client.")
    return hint.subject


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
    openid: OpenIdPolicy,
) -> AuthorizationRequest:
    """Validate the query of ``GET /oauth/authorize`` in the order RFC 6749 §4.1.2.1 requires.

    Args:
        params: every (name, value) pair of the query, repeats included.
        clients: where the client is looked up.
        issuer: this server's issuer, sent as ``iss`` (RFC 9207).
        response_types: the response types the server has enabled (canonical spelling).
        allow_plain_pkce: whether ``code_challenge_method=plain`` is accepted.
        openid: the ``id_token_hint`` check and the ``nonce`` bound.

    Raises:
        OAuthError: without a redirect before the redirect URI is trusted, with one afterwards.
    """
    grouped = _group(params)
    client, redirect_uri, redirect_param = await _trusted_target(grouped, clients)
    states = grouped.get("state", [])
    redirect = ErrorRedirect(
        redirect_uri,
        states[0] if states else None,
        _fragment_before_validation(grouped),
        issuer,
    )
    try:
        _unsupported_extensions(grouped)
        response_type = _response_type(grouped, client, response_types)
        response_mode = _response_mode(_single(grouped, "response_mode"), response_type)
        scope = _scope(_single(grouped, "scope"), client)
        prompt = _prompt(_single(grouped, "prompt"))
        state = _single(grouped, "state")
        nonce = _nonce(
            _single(grouped, "nonce"), response_type, scope, openid.max_nonce_length
        )
        max_age = _max_age(_single(grouped, "max_age"))
        _display(_single(grouped, "display"))
        hint_subject = _hint_subject(_single(grouped, "id_token_hint"), client, openid)
        login_hint = _single(grouped, "login_hint")
        challenge, method = (None, None)
        if response_type == "code":
            challenge, method = _pkce(grouped, client, allow_plain=allow_plain_pkce)
        # ui_locales and acr_values are accepted and not acted on (one language, one authentication level).
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
        response_mode=response_mode,
        nonce=nonce,
        max_age=max_age,
        login_hint=login_hint,
        hint_subject=hint_subject,
    )
