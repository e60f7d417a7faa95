"""``JwksTokenVerifier`` against the real app: in process (ASGI transport) and on a live uvicorn server.

In process, the verifier's HTTP client reaches the app through a transport that records every path and can
play an outage; tokens come from the token endpoint or are signed with the app's own keys. On the live server
the README's example API runs as written (only the port differs) and answers 200/401/403 over HTTP.
"""

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.crypto.key_encryption import PrivateKeyCipher
from oauth_service.db.key_rotation import retire_after, rotate_key
from oauth_service.oauth.errors import InvalidTokenError, TemporarilyUnavailableError
from oauth_service.resource_server import JwksTokenVerifier
from oauth_service.runtime import Runtime
from oauth_service.runtime.background import refresh_keys
from tests.bearer import access_token, basic, bearer, notes_api
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client
from tests.live_server import free_port, serve_in_thread
from tests.ops.signing_keys import jwt_header, preserved_signing_keys

JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"
README = Path(__file__).resolve().parents[2] / "README.md"
BARE = 'Bearer realm="oauth-service"'
INVALID = {
    "error": "invalid_token",
    "error_description": "The access token is invalid.",
}


class IssuerTransport(httpx.AsyncBaseTransport):
    """The app in process; records each path asked and refuses connections while ``down``."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.paths: list[str] = []
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.inner.handle_async_request(request)

    @property
    def jwks_fetches(self) -> int:
        return self.paths.count(JWKS_PATH)


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def transport(app: FastAPI) -> IssuerTransport:
    return IssuerTransport(app)


@pytest.fixture
def timer() -> Timer:
    return Timer()


Factory = Callable[..., JwksTokenVerifier]


@pytest.fixture
async def make_verifier(
    transport: IssuerTransport, timer: Timer
) -> AsyncIterator[Factory]:
    made: list[JwksTokenVerifier] = []
    async with httpx.AsyncClient(transport=transport) as http:

        def make(**options: Any) -> JwksTokenVerifier:
            values: dict[str, Any] = {"http": http, "timer": timer, **options}
            verifier = JwksTokenVerifier(values.pop("issuer", ISSUER), **values)
            made.append(verifier)
            return verifier

        yield make
        for verifier in made:
            await verifier.aclose()


async def _client_credentials(
    client: httpx.AsyncClient, auth: dict[str, str], scope: str = "read"
) -> str:
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def svc_auth(runtime: Runtime) -> dict[str, str]:
    """Basic credentials of the confidential client ``svc`` (client credentials, read and write)."""
    _, secret = await make_client(runtime, client_id="svc")
    assert secret is not None
    return basic("svc", secret)


@pytest.fixture
async def warm(
    make_verifier: Factory, client: httpx.AsyncClient, svc_auth: dict[str, str]
) -> tuple[JwksTokenVerifier, str]:
    """A verifier that has fetched the keys once, by verifying a fresh ``svc`` token; and that token."""
    verifier = make_verifier()
    token = await _client_credentials(client, svc_auth)
    await verifier.verify(token)
    return verifier, token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_header(token: str, **header: Any) -> str:
    _, payload, signature = token.split(".")
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


async def test_real_token_from_token_endpoint_verifies(
    make_verifier: Factory,
    client: httpx.AsyncClient,
    svc_auth: dict[str, str],
    transport: IssuerTransport,
) -> None:
    token = await _client_credentials(client, svc_auth, scope="read write")
    access = await make_verifier().verify(token)
    assert (access.subject, access.client_id) == ("svc", "svc")
    assert access.scopes == frozenset({"read", "write"})
    assert (access.issuer, access.audience) == (ISSUER, (ISSUER,))
    assert access.claims["jti"] == access.jti
    assert transport.paths == [METADATA_PATH, JWKS_PATH]


def _bad_tokens(runtime: Runtime, good: str, issuer: str = ISSUER) -> dict[str, str]:
    """Each way a token signed with the server's keys (or claiming to be) must be refused."""
    header, payload, signature = good.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    now = int(runtime.clock().timestamp())
    signed: dict[str, Any] = {"iss": issuer, "aud": issuer}
    id_token = {
        "iss": issuer,
        "aud": "svc",
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "nonce": "n-1",
    }
    kid = jwt_header(good)["kid"]
    return {
        "wrong_audience": access_token(
            runtime, subject="svc", **{**signed, "aud": "http://other.api"}
        ),
        "wrong_issuer": access_token(
            runtime, subject="svc", **{**signed, "iss": "http://evil.test"}
        ),
        "expired": access_token(runtime, subject="svc", ttl=-31, **signed),
        "id_token": runtime.keys.sign(id_token, typ="JWT"),
        "tampered_signature": f"{header}.{payload}.{flipped}",
        "alg_none": _with_header(good, alg="none", typ="at+jwt", kid=kid).rpartition(
            "."
        )[0]
        + ".",
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong_audience",
        "wrong_issuer",
        "expired",
        "id_token",
        "tampered_signature",
        "alg_none",
    ],
)
async def test_bad_token_is_invalid_token(
    make_verifier: Factory,
    client: httpx.AsyncClient,
    runtime: Runtime,
    svc_auth: dict[str, str],
    case: str,
) -> None:
    verifier = make_verifier()
    good = await _client_credentials(client, svc_auth)
    assert (await verifier.verify(good)).subject == "svc"
    with pytest.raises(InvalidTokenError):
        await verifier.verify(_bad_tokens(runtime, good)[case])


async def test_real_token_for_another_audience_is_invalid_token(
    make_verifier: Factory, client: httpx.AsyncClient, svc_auth: dict[str, str]
) -> None:
    token = await _client_credentials(client, svc_auth)
    with pytest.raises(InvalidTokenError):
        await make_verifier(audience="http://notes.api").verify(token)


async def test_verifier_for_another_issuer_gets_no_keys(
    make_verifier: Factory, client: httpx.AsyncClient, svc_auth: dict[str, str]
) -> None:
    # The app's metadata names http://oauth.test; asked as http://oauth.test:80 it is not the same string.
    verifier = make_verifier(issuer=f"{ISSUER}:80")
    token = await _client_credentials(client, svc_auth)
    with pytest.raises(TemporarilyUnavailableError):
        await verifier.verify(token)


async def test_key_rotation_new_kid_is_fetched_on_first_sight(
    warm: tuple[JwksTokenVerifier, str],
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: AsyncEngine,
    svc_auth: dict[str, str],
    transport: IssuerTransport,
    timer: Timer,
) -> None:
    verifier, before = warm
    plain = PrivateKeyCipher(None)
    async with preserved_signing_keys(database):
        rotated = await rotate_key(
            database,
            "RS256",
            publish_delay=timedelta(0),
            retire_after=retire_after(runtime.settings.access_token_ttl),
            cipher=plain,
        )
        await refresh_keys(runtime, plain)
        after = await _client_credentials(client, svc_auth)
        assert jwt_header(after)["kid"] == rotated.kid != jwt_header(before)["kid"]
        assert rotated.kid not in verifier.kids
        timer.now += 10  # past the refresh bound, well within the keys' cache lifetime
        assert (await verifier.verify(after)).subject == "svc"
        assert (await verifier.verify(before)).subject == "svc"  # the retired key
    assert transport.jwks_fetches == 2


async def test_fifty_random_kids_cause_at_most_one_refetch(
    warm: tuple[JwksTokenVerifier, str], transport: IssuerTransport, timer: Timer
) -> None:
    verifier, good = warm
    timer.now += 60
    alg = jwt_header(good)["alg"]
    forged = [
        _with_header(good, alg=alg, typ="at+jwt", kid=uuid.uuid4().hex)
        for _ in range(100)
    ]
    results = await asyncio.gather(
        *(verifier.verify(token) for token in forged[:50]), return_exceptions=True
    )
    assert all(isinstance(result, InvalidTokenError) for result in results)
    for token in forged[50:]:
        with pytest.raises(InvalidTokenError):
            await verifier.verify(token)
    assert transport.jwks_fetches == 2
    assert (await verifier.verify(good)).subject == "svc"


async def test_endpoint_down_with_keys_cached_still_verifies(
    warm: tuple[JwksTokenVerifier, str], transport: IssuerTransport, timer: Timer
) -> None:
    verifier, token = warm
    transport.down = True
    timer.now += 3601  # stale even at the longest cache lifetime
    for _ in range(3):
        assert (await verifier.verify(token)).subject == "svc"
        await asyncio.sleep(0.01)  # the background refresh runs, and fails
    assert transport.paths == [METADATA_PATH, JWKS_PATH, JWKS_PATH]


async def test_endpoint_down_without_keys_is_temporarily_unavailable(
    make_verifier: Factory,
    client: httpx.AsyncClient,
    svc_auth: dict[str, str],
    transport: IssuerTransport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = await _client_credentials(client, svc_auth)
    transport.down = True
    with pytest.raises(TemporarilyUnavailableError):
        await make_verifier().verify(token)
    assert [
        r.getMessage() for r in caplog.records if r.name == "oauth_service.jwks"
    ] == [
        f"JWKS refresh for issuer {ISSUER} failed: GET {ISSUER}{METADATA_PATH}: "
        "ConnectError [Errno 111] Connection refused; no keys cached, answering 503"
    ]


async def test_example_api_answers_200_401_403_and_503(
    make_verifier: Factory,
    client: httpx.AsyncClient,
    svc_auth: dict[str, str],
    transport: IssuerTransport,
    timer: Timer,
) -> None:
    read = await _client_credentials(client, svc_auth, scope="read")
    write = await _client_credentials(client, svc_auth, scope="write")
    api = notes_api(make_verifier())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://notes.test"
    ) as http:
        transport.down = True  # no key cached yet
        down = await http.get("/notes", headers=bearer(read))
        assert (down.status_code, down.json()["error"]) == (
            503,
            "temporarily_unavailable",
        )
        transport.down = False
        timer.now += 10  # the next fetch may start once the refresh bound has passed
        await _assert_example_answers(http, read=read, write=write)


async def _assert_example_answers(
    http: httpx.AsyncClient, *, read: str, write: str, owner: str = "svc"
) -> None:
    ok = await http.get("/notes", headers=bearer(read))
    assert (ok.status_code, ok.json()) == (200, {"owner": owner})
    missing = await http.get("/notes")
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, BARE)
    forged = await http.get("/notes", headers=bearer(read[:-4] + "AAAA"))
    assert (forged.status_code, forged.json()) == (401, INVALID)
    assert forged.headers["www-authenticate"].startswith(
        'Bearer realm="oauth-service", error="invalid_token"'
    )
    scope = await http.get("/notes", headers=bearer(write))
    assert scope.status_code == 403
    assert scope.json()["error"] == "insufficient_scope"
    assert 'scope="read"' in scope.headers["www-authenticate"]


# The live server: the README's example as written.


@pytest.fixture
def live_server(db_url: str, database: AsyncEngine) -> Iterator[str]:
    """The app under uvicorn on a loopback port; its base URL is also its issuer."""
    port = free_port()
    app = create_app(make_settings(db_url, issuer=f"http://127.0.0.1:{port}"))
    with serve_in_thread(app, port, name="jwks-issuer") as base:
        yield base


def _readme_examples() -> str:
    """The Python blocks of the README's JWKS section, in order."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    chosen = [
        b for b in blocks if "JwksTokenVerifier(" in b or "CombinedVerifier(" in b
    ]
    assert len(chosen) == 2, "the README shows the JWKS API, then its strict route"
    return "\n".join(chosen)


@pytest.mark.slow
async def test_readme_example_against_live_server(
    live_server: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, secret = await make_client(runtime, client_id="notes-api")
    assert secret is not None
    monkeypatch.setenv("NOTES_API_SECRET", secret)
    source = _readme_examples().replace("http://127.0.0.1:8000", live_server)
    namespace: dict[str, Any] = {}
    exec(compile(source, str(README), "exec"), namespace)  # noqa: S102 - the README's code, as written
    api: FastAPI = namespace["app"]
    _, svc_secret = await make_client(runtime, client_id="svc")
    assert svc_secret is not None
    async with httpx.AsyncClient(base_url=live_server) as server:
        tokens = [
            await _client_credentials(server, basic("svc", svc_secret), scope)
            for scope in ("read write", "write")
        ]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://notes.test"
        ) as http:
            await _assert_example_answers(http, read=tokens[0], write=tokens[1])
            deleted = await http.delete("/notes/n-1", headers=bearer(tokens[0]))
            assert (deleted.status_code, deleted.json()) == (
                200,
                {"deleted": "n-1", "by": "svc"},
            )
            revoked = await server.post(
                "/oauth/revoke",
                data={"token": tokens[0]},
                headers=basic("svc", svc_secret),
            )
            assert revoked.status_code == 200
            # The JWKS route still accepts it until exp; the strict route asks the server and refuses it.
            still = await http.get("/notes", headers=bearer(tokens[0]))
            assert still.status_code == 200
            refused = await http.delete("/notes/n-1", headers=bearer(tokens[0]))
            assert (refused.status_code, refused.json()) == (401, INVALID)
    await namespace["jwks"].aclose()


@pytest.mark.slow
async def test_live_server_tokens_verify_and_outage_keeps_cached_keys(
    db_url: str, runtime: Runtime
) -> None:
    _, secret = await make_client(runtime, client_id="svc")
    assert secret is not None
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    verifier = JwksTokenVerifier(base)
    app = create_app(make_settings(db_url, issuer=base))
    with serve_in_thread(app, port, name="jwks-issuer") as server_url:
        async with httpx.AsyncClient(base_url=server_url) as server:
            good = await _client_credentials(server, basic("svc", secret))
        access = await verifier.verify(good)
        assert (access.subject, access.issuer) == ("svc", base)
        accepted = []
        for case, token in _bad_tokens(runtime, good, base).items():
            try:
                await verifier.verify(token)
                accepted.append(case)
            except InvalidTokenError:
                pass
        assert accepted == []
    # The server is gone: the cached keys still verify, a verifier without keys answers 503.
    assert (await verifier.verify(good)).subject == "svc"
    with pytest.raises(TemporarilyUnavailableError) as raised:
        await JwksTokenVerifier(base, timeout=2.0).verify(good)
    assert "ConnectError" in str(raised.value.detail)
    await verifier.aclose()
