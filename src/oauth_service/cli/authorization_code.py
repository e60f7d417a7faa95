"""``perform authorization-code`` as a native app runs it: RFC 6749 §4.1 with PKCE (RFC 7636) and RFC 8252.

A loopback listener receives the redirect; the request carries a fresh ``state`` and an S256 challenge. The
redirect is accepted only when ``state`` matches (RFC 6749 §10.12) and ``iss`` names the issuer (RFC 9207 §2.4,
against mix-up attacks); only then is an ``error`` believed or the ``code`` exchanged with the verifier.
"""

import hmac
import os
import secrets
import sys
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from oauth_service.cli.authorization_server import (
    ClientAuth,
    ServerMetadata,
    ServerRefusedError,
    request_token,
)
from oauth_service.cli.loopback import Check, LoopbackAddress, LoopbackListener
from oauth_service.cli.token_report import unverified_claims
from oauth_service.oauth.pkce import S256, s256_challenge


class AuthorizationFailedError(Exception):
    """No usable authorization response: refused redirect, error redirect or no redirect in time."""


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """One attempt's secrets: ``state`` binds the redirect to it, the verifier proves the code is ours."""

    state: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(64), repr=False)
    # Sent when ``openid`` is asked for: the ID token must echo it (OpenID Connect Core §3.1.2.1, §15.5.2).
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    def url(
        self, metadata: ServerMetadata, client_id: str, redirect_uri: str, scope: str
    ) -> str:
        """The authorization endpoint URL to open (RFC 6749 §4.1.1, RFC 7636 §4.3)."""
        if metadata.authorization_endpoint is None:
            raise ServerRefusedError(
                f"the server at {metadata.issuer} has no authorization_endpoint"
            )
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": self.state,
            "code_challenge": s256_challenge(self.verifier),
            "code_challenge_method": S256,
        } | ({"scope": scope} if scope else {})
        if "openid" in scope.split():
            params["nonce"] = self.nonce
        joiner = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{joiner}{urlencode(params)}"

    def belongs(self, params: Mapping[str, str]) -> bool:
        """Whether a redirect carries this request's ``state`` (bytes: a non-ASCII value is just wrong)."""
        state = params.get("state", "").encode("utf-8", "surrogateescape")
        return hmac.compare_digest(state, self.state.encode("ascii"))

    def check(self, metadata: ServerMetadata) -> Check:
        """Judge a redirect: None to accept it, else the one-line reason it is refused."""

        def judge(params: Mapping[str, str]) -> str | None:
            if not self.belongs(params):
                return "the redirect's state does not match this request's: refused"
            iss = params.get("iss")
            if (
                iss is not None or metadata.iss_parameter_supported
            ) and iss != metadata.issuer:
                return f"the redirect's iss {iss!r} is not the issuer {metadata.issuer} (RFC 9207): refused"
            if "error" in params:
                description = params.get("error_description")
                return (
                    f"{params['error']}: {description}"
                    if description
                    else params["error"]
                )
            if not params.get("code"):
                return "the redirect carries neither code nor error"
            return None

        return judge


def browser_available() -> bool:
    """Whether a graphical browser can be expected; without one ``webbrowser`` may start a text browser here."""
    if sys.platform in {"darwin", "win32"}:
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def authorize_and_exchange(
    http: httpx.Client,
    metadata: ServerMetadata,
    client: ClientAuth,
    *,
    address: LoopbackAddress,
    scope: str,
    timeout: float,
    open_browser: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Send the user to the authorization endpoint, receive the redirect, exchange the code; return the tokens.

    Raises:
        AuthorizationFailedError: the listener cannot bind, no redirect in time, or a refused or error redirect.
        ServerRefusedError, ServerUnreachableError: from discovery's endpoints and the exchange.
    """
    request = AuthorizationRequest()
    try:
        listener = LoopbackListener(address, request.check(metadata), request.belongs)
    except OSError as exc:
        raise AuthorizationFailedError(
            f"cannot listen on {address.host}:{address.port}: {exc.strerror or exc}"
        ) from None
    with listener:
        url = request.url(metadata, client.client_id, listener.redirect_uri, scope)
        say(
            f"Open this URL to sign in (waiting {timeout:g} s for the redirect to {listener.redirect_uri}):"
        )
        say(url)
        if open_browser and browser_available():
            webbrowser.open(url)
        redirect = listener.wait(timeout)
    if redirect is None:
        raise AuthorizationFailedError(
            f"no redirect to {listener.redirect_uri} within {timeout:g} s"
        )
    if redirect.problem is not None:
        raise AuthorizationFailedError(redirect.problem)
    form = {
        "grant_type": "authorization_code",
        "code": redirect.params["code"],
        "redirect_uri": listener.redirect_uri,
        "code_verifier": request.verifier,
    }
    tokens = request_token(http, metadata, client, form)
    id_token = tokens.get("id_token")
    if "openid" in scope.split() and isinstance(id_token, str):
        claims = unverified_claims(id_token) or {}
        if claims.get("nonce") != request.nonce:
            raise AuthorizationFailedError(
                "the ID token's nonce is not this request's (OpenID Connect Core §3.1.3.7): refused"
            )
    return tokens
