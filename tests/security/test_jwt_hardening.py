"""Hostile JWTs on every route that decodes one: a clean refusal, never a 500 or a traceback (issue 15 item 8).

A header nested deeper than the JSON decoder's recursion limit, an oversized token or bytes that are not UTF-8
reach the JWS decoder from the bearer routes (``/api/v1``, ``/admin``), introspection (RFC 7662 §2.2: inactive)
and revocation (RFC 7009 §2.2: 200 whatever the token), and from the resource-server kit. Each is refused the way
a forged token is: 401 ``invalid_token`` (RFC 6750 §3.1), ``{"active": false}``, or 200 without effect.
"""

import base64
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from oauth_service.crypto.jwt import MAX_TOKEN_CHARS, KeySet, SigningKey, generate_key
from oauth_service.oauth.access_tokens import LocalTokenVerifier, VerifiedTokenCache
from oauth_service.runtime import Runtime
from tests.bearer import access_token, basic, bearer, notes_api
from tests.conftest import ISSUER
from tests.factories import make_client, make_user
from tests.security.conftest import AppFactory, LogCapture, http_client

INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token is invalid.",
}
BEARER_ROUTES = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/notes"),
    ("POST", "/api/v1/notes"),
    ("GET", "/admin/clients"),
    ("GET", "/admin/users"),
    ("GET", "/admin/scopes"),
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hostile(genuine: str, name: str) -> str:
    """``genuine`` with its header (or its claims) replaced by hostile bytes; the rest left as it was."""
    header, claims, signature = genuine.split(".")
    if name == "oversized":
        return f"{header}.{'A' * MAX_TOKEN_CHARS}.{signature}"
    return f"{_b64(HOSTILE_HEADERS[name])}.{claims}.{signature}"


HOSTILE_HEADERS = {
    "deep-header": b"[" * 3000,  # the review's reproduction
    "deep-header-in-object": b'{"typ":' + b"[" * 2990,
    "not-utf8-header": b"\xff\xfe{}",
}
HOSTILE = [*HOSTILE_HEADERS, "oversized"]


@pytest.fixture
async def app(make_app: AppFactory) -> FastAPI:
    return await make_app()


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as client:
        yield client


@pytest.fixture
async def genuine(app: FastAPI) -> str:
    """A valid admin token of a live user, so each route would answer 200 to it."""
    runtime: Runtime = app.state.runtime
    user, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    return access_token(runtime, subject=user.id, scope="admin read write")


@pytest.fixture
async def rs_auth(app: FastAPI) -> dict[str, str]:
    """Basic credentials of ``rs``, a confidential client that introspects and revokes."""
    _, secret = await make_client(app.state.runtime, client_id="rs")
    assert secret is not None
    return basic("rs", secret)


def _assert_clean_logs(logs: LogCapture) -> None:
    lines = logs.lines()
    assert not [line for line in lines if "exc_info" in line], "a traceback was logged"
    assert not [line for line in lines if line.get("level") in {"ERROR", "CRITICAL"}]
    assert "Traceback" not in logs.text


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize(("method", "path"), BEARER_ROUTES)
async def test_bearer_route_refuses_a_hostile_token_with_401(
    http: httpx.AsyncClient,
    genuine: str,
    captured_logs: LogCapture,
    method: str,
    path: str,
    name: str,
) -> None:
    body = {"title": "t"} if method == "POST" else None
    response = await http.request(
        method, path, headers=bearer(_hostile(genuine, name)), json=body
    )
    assert response.status_code == 401, response.text
    assert response.json() == INVALID_TOKEN
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    _assert_clean_logs(captured_logs)
    # The same route answers the genuine token: the 401 came from the token, not from the request.
    ok = await http.request(method, path, headers=bearer(genuine), json=body)
    assert ok.status_code in {200, 201}, ok.text


@pytest.mark.parametrize("name", HOSTILE)
async def test_introspection_of_a_hostile_token_is_inactive(
    rs_auth: dict[str, str],
    http: httpx.AsyncClient,
    genuine: str,
    captured_logs: LogCapture,
    name: str,
) -> None:
    response = await http.post(
        "/oauth/introspect",
        data={"token": _hostile(genuine, name)},
        headers=rs_auth,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}
    _assert_clean_logs(captured_logs)


@pytest.mark.parametrize("name", HOSTILE)
async def test_revocation_of_a_hostile_token_is_200_without_effect(
    rs_auth: dict[str, str],
    http: httpx.AsyncClient,
    genuine: str,
    captured_logs: LogCapture,
    name: str,
) -> None:
    response = await http.post(
        "/oauth/revoke",
        data={"token": _hostile(genuine, name), "token_type_hint": "access_token"},
        headers=rs_auth,
    )
    assert response.status_code == 200, response.text
    assert response.content == b""
    _assert_clean_logs(captured_logs)
    assert (await http.get("/api/v1/me", headers=bearer(genuine))).status_code == 200


def _kit(keys: KeySet, *, issuer: str, audience: str) -> httpx.AsyncClient:
    """A user's API protected by the resource-server kit (local verification, verified-token cache)."""
    verifier = LocalTokenVerifier(
        lambda: keys,
        issuer=issuer,
        audience=audience,
        is_revoked=None,
        cache=VerifiedTokenCache(),
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=notes_api(verifier)), base_url=ISSUER
    )


@pytest.mark.parametrize("name", HOSTILE)
async def test_resource_server_kit_refuses_a_hostile_token_with_401(
    app: FastAPI, genuine: str, name: str
) -> None:
    runtime: Runtime = app.state.runtime
    settings = runtime.settings
    async with _kit(
        runtime.keys, issuer=settings.issuer, audience=settings.resource_audience
    ) as kit:
        refused = await kit.get("/notes", headers=bearer(_hostile(genuine, name)))
        assert refused.status_code == 401, refused.text
        assert refused.json() == INVALID_TOKEN
        assert (await kit.get("/notes", headers=bearer(genuine))).status_code == 200


# One token, one spelling: a second spelling of a genuine token must not ride on the verified-token cache or
# dodge the revocation list, which both key on the exact string.

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _padding_bits_set(token: str) -> str:
    """``token`` with the unused low bits of its signature's last character set: the same signature bytes."""
    index = _ALPHABET.index(token[-1])
    assert index % 4 == 0  # an RS256 or ES256 signature leaves 2 or 4 unused bits
    return token[:-1] + _ALPHABET[index | 1]


def _high_s_twin(token: str) -> str:
    """The ES256 token with its signature's ``s`` replaced by ``n - s``: still a valid ECDSA signature."""
    signing_input, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    s = int.from_bytes(raw[32:], "big")
    twin = raw[:32] + (P256_ORDER - s).to_bytes(32, "big")
    return f"{signing_input}.{_b64(twin)}"


async def test_second_spelling_of_a_cached_token_is_refused_everywhere(
    rs_auth: dict[str, str],
    http: httpx.AsyncClient,
    genuine: str,
    captured_logs: LogCapture,
) -> None:
    assert (await http.get("/api/v1/me", headers=bearer(genuine))).status_code == 200
    respelt = _padding_bits_set(genuine)
    assert base64.urlsafe_b64decode(respelt.rsplit(".")[2] + "==") == (
        base64.urlsafe_b64decode(genuine.rsplit(".")[2] + "==")
    )
    refused = await http.get("/api/v1/me", headers=bearer(respelt))
    assert refused.status_code == 401, refused.text
    assert refused.json() == INVALID_TOKEN
    introspected = await http.post(
        "/oauth/introspect", data={"token": respelt}, headers=rs_auth
    )
    assert introspected.json() == {"active": False}
    _assert_clean_logs(captured_logs)


async def test_kit_refuses_the_high_s_twin_of_a_cached_es256_token() -> None:
    kid, pem, _ = generate_key("ES256")
    keys = KeySet(SigningKey.from_pem(kid, "ES256", pem))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": ISSUER, "sub": "u1", "client_id": "app"}
    token = keys.sign(
        claims | {"scope": "read", "iat": now, "exp": now + 600, "jti": "j1"}
    )
    async with _kit(keys, issuer=ISSUER, audience=ISSUER) as kit:
        assert (await kit.get("/notes", headers=bearer(token))).status_code == 200
        refused = await kit.get("/notes", headers=bearer(_high_s_twin(token)))
        assert refused.status_code == 401, refused.text
        assert refused.json() == INVALID_TOKEN
