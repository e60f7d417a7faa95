"""Verify this server's access tokens in an API that runs elsewhere, with the keys of the published JWKS.

RFC 8414 §3 (discovery at ``<issuer>/.well-known/oauth-authorization-server``, whose ``issuer`` must equal the
configured one exactly, §3.3), RFC 7517 §5 (the JWK Set at ``jwks_uri``) and RFC 9068 §4 (validation: ``typ``
``at+jwt``, the signature with the algorithm pinned to the key named by ``kid``, ``iss``, ``aud``, ``exp``, and
the §2.2 claims). Verification itself is ``LocalTokenVerifier`` over a ``crypto.jwt.KeySet`` built from the
fetched keys, so this module adds only the fetching: which URLs may be asked, how long keys are kept and how
often they may be fetched again.

No revocation list is consulted: a revoked token keeps verifying until its ``exp``.
``verification.CombinedVerifier`` adds an introspection call for the routes where that bound is too long.
"""

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httpx

from oauth_service.crypto.jwt import (
    MAX_HEADER_CHARS,
    MAX_TOKEN_CHARS,
    KeySet,
    VerificationKey,
)
from oauth_service.oauth.access_tokens import (
    DEFAULT_LEEWAY,
    AccessToken,
    LocalTokenVerifier,
    TokenKeys,
    VerifiedTokenCache,
)
from oauth_service.oauth.errors import InvalidTokenError, TemporarilyUnavailableError

__all__ = ["JwksTokenVerifier"]

log = logging.getLogger("oauth_service.jwks")

METADATA_PATH = "/.well-known/oauth-authorization-server"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?=,|$)", re.IGNORECASE)


class _FetchError(Exception):
    """Discovery or the JWKS fetch failed; the message (URL and cause, never a token) is logged as is."""


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an absolute http(s) URL, default ports made explicit; None otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _peek_kid(token: str) -> str | None:
    """The ``kid`` of the token's header, read only to decide whether the keys need fetching.

    Nothing is trusted here: ``KeySet.verify`` parses and checks the whole token afterwards.
    """
    if len(token) > MAX_TOKEN_CHARS:
        return None
    segment = token.partition(".")[0]
    if len(segment) > MAX_HEADER_CHARS:
        return None
    try:
        header = json.loads(
            base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        )
    except (ValueError, RecursionError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _max_age(cache_control: str | None) -> float | None:
    if cache_control is None:
        return None
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else None


def _verification_keys(body: object, url: str) -> list[VerificationKey]:
    """The signing keys of a JWK Set; a key without ``kid`` or ``alg`` is skipped (pinning needs both)."""
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list):
        raise _FetchError(f"{url} is not a JWK Set")
    found: list[VerificationKey] = []
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kid, alg = jwk.get("kid"), jwk.get("alg")
        if not isinstance(kid, str) or not isinstance(alg, str):
            continue
        try:
            found.append(VerificationKey.from_jwk(kid, alg, jwk))
        except (KeyError, TypeError, ValueError):
            log.info("JWKS %s: key %r skipped (unsupported or malformed)", url, kid)
    return found


class JwksTokenVerifier:
    """Verifies access tokens with the signing keys the issuer publishes (RFC 8414 discovery, RFC 7517 JWKS).

    Keys are fetched when first needed and kept for the JWKS response's ``Cache-Control: max-age``, bounded
    to ``[min_cache_ttl, max_cache_ttl]`` (``default_cache_ttl`` without one); past that a request refreshes
    them in the background and goes on with the cached keys. A token naming an unknown ``kid`` (a rotation)
    waits for a refresh, but fetches start at most once per ``refresh_interval`` seconds and concurrent
    requests share one fetch, so tokens with made-up kids cannot make this verifier hammer the issuer.

    Only the issuer's origin is contacted: a ``jwks_uri`` on another scheme, host or port is refused unless
    ``allow_foreign_jwks_uri`` (then it must still be https, or http like the issuer). Redirects are not
    followed. When no key is cached and the issuer cannot give one, tokens are answered 503
    (``TemporarilyUnavailableError``) and each failed fetch logs one line with the URL and the cause.
    """

    def __init__(
        self,
        issuer: str,
        *,
        audience: str | None = None,
        leeway: int = DEFAULT_LEEWAY,
        http: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        refresh_interval: float = 10.0,
        default_cache_ttl: float = 300.0,
        min_cache_ttl: float = 30.0,
        max_cache_ttl: float = 3600.0,
        allow_foreign_jwks_uri: bool = False,
        cache: VerifiedTokenCache | None = None,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if _origin(issuer) is None:
            raise ValueError(f"issuer must be an absolute http(s) URL, not {issuer!r}")
        self.issuer = issuer
        self.audience = audience or issuer  # the server's default ``aud`` is its issuer
        self.metadata_url = issuer.rstrip("/") + METADATA_PATH
        self._http = http
        self._timeout = timeout
        self._refresh_interval = refresh_interval
        self._default_ttl = default_cache_ttl
        self._ttl_bounds = (min_cache_ttl, max_cache_ttl)
        self._allow_foreign = allow_foreign_jwks_uri
        self._timer = timer
        self._keys: KeySet | None = None
        self._fetched = False  # a JWK Set was received (it may have held no usable key)
        self._fresh_until = float("-inf")
        self._last_attempt: float | None = None
        self._failure: str | None = None  # the cause of the last attempt's failure
        self._jwks_uri: str | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._local = LocalTokenVerifier(
            self._current_keys,
            issuer=issuer,
            audience=self.audience,
            is_revoked=None,
            leeway=leeway,
            clock=clock,
            cache=cache,
        )

    def _current_keys(self) -> TokenKeys:
        assert self._keys is not None  # noqa: S101 - verify() checks before asking
        return self._keys

    async def verify(self, token: str) -> AccessToken:
        """Verify signature and claims with the issuer's published keys (no revocation check).

        Raises:
            InvalidTokenError: the token must not be accepted.
            TemporarilyUnavailableError: the key it needs is not cached and the issuer cannot be asked.
        """
        kid = _peek_kid(token)
        await self._ensure_keys(kid)
        if not self._fetched or (
            self._failure is not None and kid is not None and kid not in self.kids
        ):
            raise TemporarilyUnavailableError(
                detail=f"JWKS unavailable: {self._failure}"
            )
        if self._keys is None:
            raise InvalidTokenError(detail="the issuer publishes no usable key")
        return await self._local.verify(token)

    @property
    def kids(self) -> frozenset[str]:
        """The key ids cached now."""
        return self._keys.kids if self._keys is not None else frozenset()

    async def _ensure_keys(self, kid: str | None) -> None:
        task = self._inflight
        running = task is not None and not task.done()
        if not self._fetched or (kid is not None and kid not in self.kids):
            if not running and self._may_refresh():
                task, running = self._start_refresh(), True
            if running:
                assert task is not None  # noqa: S101 - running implies a task
                # Shielded: a request that gives up must not cancel the fetch others wait for.
                await asyncio.shield(task)
        elif not running and self._timer() >= self._fresh_until and self._may_refresh():
            self._start_refresh()  # stale: answer with the cached keys meanwhile

    def _may_refresh(self) -> bool:
        last = self._last_attempt
        return last is None or self._timer() - last >= self._refresh_interval

    def _start_refresh(self) -> asyncio.Task[None]:
        self._last_attempt = self._timer()
        self._inflight = asyncio.create_task(self._refresh(), name="jwks-refresh")
        return self._inflight

    async def _refresh(self) -> None:
        """Fetch the keys; on failure keep the cached ones and log why. Never raises."""
        try:
            keys, max_age = await self._fetch()
        except Exception as exc:  # a background task must not die unseen
            cause = str(exc) if isinstance(exc, _FetchError) else repr(exc)
            self._failure = cause
            kept = (
                "keeping the cached keys"
                if self._fetched
                else "no keys cached, answering 503"
            )
            log.warning(
                "JWKS refresh for issuer %s failed: %s; %s", self.issuer, cause, kept
            )
            return
        low, high = self._ttl_bounds
        ttl = min(max(self._default_ttl if max_age is None else max_age, low), high)
        self._keys = KeySet.for_verification(keys) if keys else None
        self._fetched, self._failure = True, None
        self._fresh_until = self._timer() + ttl

    async def _fetch(self) -> tuple[list[VerificationKey], float | None]:
        jwks_uri = self._jwks_uri or await self._discover()
        try:
            response = await self._get(jwks_uri)
        except _FetchError:
            # Ask the metadata again next time: the JWKS may have moved.
            self._jwks_uri = None
            raise
        return _verification_keys(_json(response, jwks_uri), jwks_uri), _max_age(
            response.headers.get("cache-control")
        )

    async def _discover(self) -> str:
        url = self.metadata_url
        metadata = _json(await self._get(url), url)
        if not isinstance(metadata, dict) or metadata.get("issuer") != self.issuer:
            found = metadata.get("issuer") if isinstance(metadata, dict) else None
            raise _FetchError(
                f"{url} names issuer {found!r}, "
                f"not the configured {self.issuer!r} (RFC 8414 §3.3)"
            )
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not self._may_fetch(jwks_uri):
            raise _FetchError(
                f"{url} gives jwks_uri {jwks_uri!r}, not on the issuer's origin "
                "(pass allow_foreign_jwks_uri=True to trust it)"
            )
        self._jwks_uri = jwks_uri
        return jwks_uri

    def _may_fetch(self, url: str) -> bool:
        """The SSRF guard: only the issuer's origin, unless the caller trusts foreign ones."""
        origin, issuer = _origin(url), _origin(self.issuer)
        if origin is None or issuer is None:
            return False
        if origin == issuer:
            return True
        return self._allow_foreign and origin[0] in {"https", issuer[0]}

    async def _get(self, url: str) -> httpx.Response:
        try:
            if self._http is not None:
                response = await self._http.get(
                    url, timeout=self._timeout, follow_redirects=False
                )
            else:
                async with httpx.AsyncClient(
                    timeout=self._timeout, follow_redirects=False
                ) as http:
                    response = await http.get(url)
        except httpx.HTTPError as exc:
            raise _FetchError(
                f"GET {url}: {type(exc).__name__} {exc}".rstrip()
            ) from None
        if response.status_code != httpx.codes.OK:
            raise _FetchError(f"GET {url}: HTTP {response.status_code}")
        return response

    async def aclose(self) -> None:
        """Cancel a background refresh still running (the injected ``http`` client stays open)."""
        task = self._inflight
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _json(response: httpx.Response, url: str) -> object:
    try:
        return cast(object, response.json())
    except ValueError:
        raise _FetchError(f"GET {url}: not JSON") from None
