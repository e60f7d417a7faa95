"""Verify this server's access tokens in an API of your own, with no web framework involved.

RFC 6750 §2.1 (the token comes from the ``Authorization: Bearer`` header only; a token in the query string or
the body is ignored), RFC 9068 §4 (local verification, ``LocalTokenVerifier`` from ``oauth.access_tokens``) and
RFC 7662 §2 (remote verification through the introspection endpoint, for APIs deployed apart from the server,
with a short cache). ``CombinedVerifier`` verifies locally, then asks the issuer. ``JwksTokenVerifier``
(``resource_server.jwks``) verifies locally with the issuer's published keys. The errors raised here carry their
RFC 6750 §3 answer; ``resource_server.fastapi`` renders them.
"""

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpx

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.access_tokens import AccessToken, TtlCache
from oauth_service.oauth.errors import (
    BearerTokenError,
    InvalidTokenError,
    MissingTokenError,
    ServerError,
    TemporarilyUnavailableError,
)

__all__ = [
    "LOG_INTERVAL",
    "CombinedVerifier",
    "IntrospectionVerifier",
    "InvalidBearerRequestError",
    "TokenVerifier",
    "bearer_token_of",
]

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")

# The name the README documents (and logging configs may filter on), kept when the kit became a package.
log = logging.getLogger("oauth_service.resource")

# Seconds between two log lines about the same kind of introspection failure.
LOG_INTERVAL = 60.0


class InvalidBearerRequestError(BearerTokenError):
    """The request carries more than one Authorization header (RFC 6750 §3.1 ``invalid_request``)."""

    error = "invalid_request"
    status_code = 400
    default_description = "Send exactly one Authorization header."


class TokenVerifier(Protocol):
    """Turns a bearer token into an ``AccessToken`` or raises ``InvalidTokenError``."""

    async def verify(self, token: str) -> AccessToken:
        """Verify the token completely."""
        ...


def bearer_token_of(authorization: Sequence[str]) -> str:
    """Return the bearer token of a request's ``Authorization`` header values (every one the request sent).

    Raises:
        MissingTokenError: no Bearer credentials were sent (bare challenge).
        InvalidBearerRequestError: several Authorization headers.
        InvalidTokenError: the header is not ``Bearer <b64token>``.
    """
    if not authorization:
        raise MissingTokenError
    if len(authorization) > 1:
        raise InvalidBearerRequestError
    scheme, _, credentials = authorization[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingTokenError
    token = credentials.strip()
    if not _B64TOKEN.fullmatch(token):
        raise InvalidTokenError("The access token is malformed.")
    return token


class IntrospectionVerifier:
    """Verifies tokens by asking the server's introspection endpoint (RFC 7662), with a short cache.

    Active answers are kept ``cache_ttl`` seconds at most (never past the token's ``exp``), so a revocation is
    seen within that bound; inactive answers are kept ``cache_ttl`` seconds too.

    When introspection fails, the caller's token is not at fault, so the answer is never ``invalid_token``:
    the server refusing this API's own credentials (401/403), a wrong endpoint URL or a non-JSON answer is this
    API's misconfiguration, 500 ``server_error``; an unreachable or failing (5xx) server, or this API's client
    locked for a while (429), is 503 ``temporarily_unavailable``. Each kind of failure logs one line on the
    ``oauth_service.resource`` logger (never the secret or a token) at most once per ``LOG_INTERVAL`` seconds.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        client_id: str,
        client_secret: str,
        audience: str | None = None,
        cache_ttl: float = 30.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        self._endpoint = endpoint
        self._client_id = client_id
        self._auth = httpx.BasicAuth(client_id, client_secret)
        # When each kind of failure was last logged (see ``_log``).
        self._logged: dict[str, float] = {}
        self._audience = audience
        self._ttl = cache_ttl
        self._http = http
        self._clock = clock
        self._timeout = timeout
        # One-element tuples, so an inactive answer (None) can be cached too.
        self._cache: TtlCache[str, tuple[AccessToken | None]] = TtlCache(clock=clock)

    async def _post(self, token: str) -> dict[str, Any]:
        data = {"token": token, "token_type_hint": "access_token"}
        try:
            if self._http is not None:
                response = await self._http.post(
                    self._endpoint, data=data, auth=self._auth, timeout=self._timeout
                )
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    response = await http.post(
                        self._endpoint, data=data, auth=self._auth
                    )
        except httpx.HTTPError as exc:
            cause = f"{type(exc).__name__} {exc}".strip()
            raise self._outage(cause) from None
        if response.status_code == 429:
            # Locked after failed attempts of this client id from this address: temporary, and this API's doing.
            self._log(
                "locked",
                logging.ERROR,
                "the authorization server at %s locked this API's client id (client_id=%s) after failed "
                "attempts from this address, retry after %s s: check the client id and secret",
                self._endpoint,
                self._client_id,
                response.headers.get("retry-after", "?"),
            )
            raise TemporarilyUnavailableError(detail="introspection client locked")
        if response.status_code in (401, 403):
            self._log(
                "refused",
                logging.ERROR,
                "the authorization server refused this API's client credentials (client_id=%s) at %s: "
                "check the client id and secret",
                self._client_id,
                self._endpoint,
            )
            raise ServerError(detail="introspection refused the API's credentials")
        if response.status_code >= 500:
            raise self._outage(f"HTTP {response.status_code}")
        body: object = None
        if response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                body = None
        if not isinstance(body, dict):
            # A 404, a redirect or an HTML page: the URL is not an introspection endpoint.
            self._log(
                "misconfigured",
                logging.ERROR,
                "introspection at %s answered HTTP %s%s: check the endpoint URL "
                "(<issuer>/oauth/introspect)",
                self._endpoint,
                response.status_code,
                " without a JSON object" if response.status_code == 200 else "",
            )
            raise ServerError(detail="introspection endpoint misconfigured")
        return body

    def _outage(self, cause: str) -> TemporarilyUnavailableError:
        """Log (rate-limited) that the server is unreachable or failing; the error to answer (503)."""
        self._log(
            "outage",
            logging.WARNING,
            "introspection at %s failed: %s; answering 503",
            self._endpoint,
            cause,
        )
        return TemporarilyUnavailableError(detail=f"introspection failed: {cause}")

    def _log(self, kind: str, level: int, message: str, *args: object) -> None:
        """Log one line per kind of failure per ``LOG_INTERVAL``: a broken setup fails every request."""
        now = self._clock()
        last = self._logged.get(kind)
        if last is not None and now - last < LOG_INTERVAL:
            return
        self._logged[kind] = now
        log.log(level, message, *args)

    def _to_access_token(self, body: dict[str, Any]) -> AccessToken | None:
        if body.get("active") is not True:
            return None
        # The introspecting client's own refresh tokens are active too; only an access token is a bearer.
        token_type = body.get("token_type")
        if token_type is not None and str(token_type).lower() != "bearer":
            return None
        aud = body.get("aud")
        audience = tuple(aud) if isinstance(aud, list) else (str(aud),) if aud else ()
        if self._audience is not None and self._audience not in audience:
            return None
        exp, sub, client_id = body.get("exp"), body.get("sub"), body.get("client_id")
        if not isinstance(exp, int) or not isinstance(client_id, str):
            return None
        scope = body.get("scope", "")
        return AccessToken(
            subject=sub if isinstance(sub, str) else client_id,
            client_id=client_id,
            scopes=frozenset(str(scope).split()),
            jti=str(body.get("jti", "")),
            expires_at=exp,
            issued_at=body.get("iat") if isinstance(body.get("iat"), int) else None,
            audience=audience,
            issuer=str(body.get("iss", "")),
            claims=body,
        )

    async def verify(self, token: str) -> AccessToken:
        """Introspect (or reuse a cached answer) and return the active token.

        Raises:
            InvalidTokenError: inactive, expired, revoked, or meant for another audience.
            ServerError: the server refused this API's credentials, or the endpoint URL is wrong.
            TemporarilyUnavailableError: the introspection endpoint could not be reached, failed, or has
                locked this API's client for a while.
        """
        key = token_hash(token)
        now = self._clock()
        answer = self._cache.get(key)
        if answer is None:
            answer = (self._to_access_token(await self._post(token)),)
            until = now + self._ttl
            if answer[0] is not None:
                until = min(until, answer[0].expires_at)
            self._cache.put(key, answer, until=until)
        access = answer[0]
        if access is None or access.expires_at <= now:
            raise InvalidTokenError(detail="token is not active")
        return access


class CombinedVerifier:
    """A local check, then the issuer's word: for routes where a revoked token must stop at once.

    ``local`` (a ``JwksTokenVerifier``) refuses forged, expired and misdirected tokens without a network call;
    only a token that passes is sent to ``remote`` (an ``IntrospectionVerifier``), which also knows
    revocation. The local ``AccessToken`` is returned: it carries the signed claims.
    """

    def __init__(self, local: TokenVerifier, remote: TokenVerifier) -> None:
        self.local = local
        self.remote = remote

    async def verify(self, token: str) -> AccessToken:
        """Verify with ``local``, then with ``remote``; either one's refusal is final."""
        access = await self.local.verify(token)
        await self.remote.verify(token)
        return access
