"""OpenID Connect's authorization code flow end to end (Core §3.1): pages → code → /oauth/token → ``id_token``.

The ID token is checked as a relying party checks it, with joserfc against the published JWKS and Authlib's
``CodeIDToken`` claims rules (``tests.id_token_checks``), then claim by claim: ``typ``, ``kid``, ``auth_time``,
``nonce`` echoed exactly, ``at_hash``, ``amr`` and ``sid`` (the browser session's). Refresh keeps ``auth_time`` and
``sid`` and drops ``nonce`` (Core §12.2). An ID token is never an access token, and an access token is never an
``id_token_hint``.
"""

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.crypto.jwt import TokenVerificationError
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    new_pkce,
    query_of,
)
from tests.bearer import bearer
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client, make_user
from tests.fakes import FixedClock
from tests.id_token_checks import published_jwks, validate_id_token

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
# Every character a nonce may carry through a query string, echoed byte for byte.
NONCE = "n-0S6_WzA2Mj ~!$&'()*+,;=/?:@%\"é"
ID_TOKEN_CLAIMS = {
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "amr",
    "sid",
}


def _at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6, computed here independently of the server's code: left half of SHA-256."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


async def _setup(runtime: Runtime) -> str:
    user, _ = await make_user(runtime, email=EMAIL, password=PASSWORD)
    await make_client(
        runtime,
        client_id="rp",
        name="Relying Party",
        is_public=True,
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(CALLBACK,),
        scopes=("openid", "profile", "email", "read"),
    )
    return user.id


async def _tokens(
    http: httpx.AsyncClient, scope: str = "openid read", **extra: str
) -> dict[str, Any]:
    """Sign in through the pages and redeem the code; the token response's JSON."""
    verifier, challenge = new_pkce()
    params = {
        "response_type": "code",
        "client_id": "rp",
        "redirect_uri": CALLBACK,
        "scope": scope,
        "state": "st",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    response = await authorize_through_pages(
        http, authorize_url(**params), email=EMAIL, password=PASSWORD
    )
    assert response.status_code in (302, 303), response.text
    code = query_of(response.headers["location"])["code"]
    token = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": "rp",
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


async def _session_sid(database: AsyncEngine) -> str:
    async with database.connect() as conn:
        sids = (await conn.execute(text("SELECT sid FROM login_sessions"))).scalars()
        found = list(sids)
    assert len(found) == 1
    sid: str = found[0]
    return sid


@pytest.fixture
def clock(runtime: Runtime) -> FixedClock:
    """A clock pinned to a whole second of real time: ``auth_time`` and ``iat`` are then known exactly."""
    pinned = FixedClock(datetime.now(UTC).replace(microsecond=0))
    runtime.clock = pinned
    return pinned


async def test_code_flow_with_openid_returns_id_token_a_relying_party_accepts(
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: AsyncEngine,
    clock: FixedClock,
) -> None:
    user_id = await _setup(runtime)
    body = await _tokens(client, nonce=NONCE)
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
        "id_token",
    }
    jwks = await published_jwks(client)
    valid = validate_id_token(
        body["id_token"],
        jwks,
        client_id="rp",
        nonce=NONCE,
        access_token=body["access_token"],
        now=int(clock.now.timestamp()),
    )
    assert valid.header == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": runtime.keys.signing.kid,
    }
    assert valid.header["kid"] in {key["kid"] for key in jwks["keys"]}
    now = int(clock.now.timestamp())
    sid = await _session_sid(database)
    assert valid.claims == {
        "iss": ISSUER,
        "sub": user_id,
        "aud": "rp",
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "nonce": NONCE,
        "at_hash": _at_hash(body["access_token"]),
        "amr": ["pwd"],
        "sid": sid,
    }
    assert set(valid.claims) == ID_TOKEN_CLAIMS
    assert len(sid) >= 22


async def test_code_flow_without_openid_returns_no_id_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    body = await _tokens(client, scope="read", nonce="n-1")
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
    }


async def test_code_flow_without_nonce_returns_id_token_without_nonce(
    client: httpx.AsyncClient, runtime: Runtime, clock: FixedClock
) -> None:
    """``nonce`` is optional for the code flow (Core §3.1.2.1): the ID token then has none."""
    await _setup(runtime)
    body = await _tokens(client)
    valid = validate_id_token(
        body["id_token"],
        await published_jwks(client),
        client_id="rp",
        access_token=body["access_token"],
        now=int(clock.now.timestamp()),
    )
    assert set(valid.claims) == ID_TOKEN_CLAIMS - {"nonce"}


async def test_refresh_returns_id_token_with_same_auth_time_and_sid_and_no_nonce(
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: AsyncEngine,
    clock: FixedClock,
) -> None:
    user_id = await _setup(runtime)
    signed_in_at = int(clock.now.timestamp())
    first = await _tokens(client, nonce=NONCE)
    clock.advance(seconds=120)
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "rp",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    now = int(clock.now.timestamp())
    valid = validate_id_token(
        body["id_token"],
        await published_jwks(client),
        client_id="rp",
        access_token=body["access_token"],
        now=now,
    )
    assert valid.claims == {
        "iss": ISSUER,
        "sub": user_id,
        "aud": "rp",
        "iat": now,
        "exp": now + 3600,
        "auth_time": signed_in_at,
        "at_hash": _at_hash(body["access_token"]),
        "amr": ["pwd"],
        "sid": await _session_sid(database),
    }


@pytest.fixture
async def es256_app(
    db_url: str, database: AsyncEngine, es256_keys: None
) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(db_url, signing_alg="ES256"))
    async with app.router.lifespan_context(app):
        yield app


async def test_id_token_signed_with_es256_when_configured(es256_app: FastAPI) -> None:
    runtime: Runtime = es256_app.state.runtime
    user_id = await _setup(runtime)
    transport = httpx.ASGITransport(app=es256_app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        body = await _tokens(http, nonce=NONCE)
        jwks = await published_jwks(http)
    valid = validate_id_token(
        body["id_token"],
        jwks,
        client_id="rp",
        nonce=NONCE,
        access_token=body["access_token"],
    )
    assert valid.header == {
        "alg": "ES256",
        "typ": "JWT",
        "kid": runtime.keys.signing.kid,
    }
    assert valid.claims["sub"] == user_id
    # ES256 hashes with SHA-256 too (Core §3.1.3.6: the hash of the JWS alg).
    assert valid.claims["at_hash"] == _at_hash(body["access_token"])


async def test_id_token_is_never_accepted_as_an_access_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    body = await _tokens(client, nonce=NONCE)
    id_token = body["id_token"]
    response = await client.get("/api/v1/me", headers=bearer(id_token))
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token is invalid.",
    }
    for audience in (runtime.settings.resource_audience, "rp"):
        with pytest.raises(TokenVerificationError):
            runtime.keys.verify(id_token, issuer=ISSUER, audience=audience)
    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200


async def test_access_token_is_refused_as_id_token_hint(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    body = await _tokens(client, nonce=NONCE)
    _verifier, challenge = new_pkce()
    response = await client.get(
        authorize_url(
            response_type="code",
            client_id="rp",
            scope="openid",
            state="st-2",
            code_challenge=challenge,
            code_challenge_method="S256",
            id_token_hint=body["access_token"],
        )
    )
    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {
        "error": "invalid_request",
        "error_description": "id_token_hint is not valid.",
        "state": "st-2",
        "iss": ISSUER,
    }


async def test_id_token_from_the_token_endpoint_works_as_id_token_hint(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """The RP's silent re-authentication: ``prompt=none`` with the ID token it holds answers with a code."""
    await _setup(runtime)
    body = await _tokens(client, nonce=NONCE)
    _verifier, challenge = new_pkce()
    response = await client.get(
        authorize_url(
            response_type="code",
            client_id="rp",
            scope="openid read",
            state="st-3",
            code_challenge=challenge,
            code_challenge_method="S256",
            prompt="none",
            id_token_hint=body["id_token"],
        )
    )
    assert response.status_code == 302
    params = query_of(response.headers["location"])
    assert set(params) == {"code", "state", "iss"}
