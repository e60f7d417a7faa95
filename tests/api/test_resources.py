"""The sample protected API: ``/api/v1/me`` and notes owned by the token subject (RFC 6750 §3 errors)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from oauth_service.app import create_app
from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.db import admin
from oauth_service.runtime import Runtime
from oauth_service.settings import Settings
from tests.bearer import access_token, basic, bearer
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client, make_user

BARE = 'Bearer realm="oauth-service"'
INVALID = {
    "error": "invalid_token",
    "error_description": "The access token is invalid.",
}
INVALID_CHALLENGE = (
    'Bearer realm="oauth-service", error="invalid_token", '
    'error_description="The access token is invalid."'
)


def _scope_challenge(scope: str) -> str:
    return (
        'Bearer realm="oauth-service", error="insufficient_scope", '
        f'error_description="The access token lacks a required scope.", scope="{scope}"'
    )


async def test_me_with_user_token_returns_user(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, _ = await make_user(runtime)
    token = access_token(runtime, subject=user.id, scope="read")
    response = await client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "type": "user",
        "sub": user.id,
        "client_id": "app",
        "scope": "read",
        "email": "alice@example.com",
        "is_admin": False,
    }


async def test_me_with_client_token_returns_client(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = access_token(runtime, subject="svc", client_id="svc", scope="")
    response = await client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "type": "client",
        "sub": "svc",
        "client_id": "svc",
        "scope": "",
    }


async def test_me_without_token_is_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "Bearer token required.",
    }


async def test_me_with_token_in_query_string_is_bare_challenge(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, _ = await make_user(runtime)
    token = access_token(runtime, subject=user.id)
    response = await client.get("/api/v1/me", params={"access_token": token})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE


async def test_me_with_revoked_jti_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, _ = await make_user(runtime)
    token = access_token(runtime, subject=user.id, jti="revoked-jti")
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    expires = datetime.now(UTC) + timedelta(minutes=10)
    await runtime.stores.revoked_tokens.add("revoked-jti", expires)
    response = await client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["www-authenticate"] == INVALID_CHALLENGE


async def test_me_with_deactivated_user_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, _ = await make_user(runtime)
    token = access_token(runtime, subject=user.id)
    async with runtime.sessionmaker() as session:
        await admin.deactivate_user(session, user_id=user.id)
        await session.commit()
    response = await client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_me_with_expired_token_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, _ = await make_user(runtime)
    token = access_token(runtime, subject=user.id, ttl=60)
    real_clock = runtime.clock
    runtime.clock = lambda: real_clock() + timedelta(seconds=60 + 31)
    response = await client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_me_with_token_expired_after_a_cached_use_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = access_token(runtime, subject="svc", client_id="svc", ttl=60)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    real_clock = runtime.clock
    runtime.clock = lambda: real_clock() + timedelta(seconds=60 + 31)
    response = await client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_me_token_of_a_removed_key_stops_verifying_at_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = access_token(runtime, subject="svc", client_id="svc")
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    kept = runtime.keys
    kid, pem, _ = generate_key("RS256")
    runtime.keys = KeySet(
        SigningKey.from_pem(kid, "RS256", pem)
    )  # a reload without the old key
    try:
        response = await client.get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.json() == INVALID
    finally:
        runtime.keys = kept
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200


class _CountedVerify:
    """Counts ``KeySet.verify`` calls (full signature verifications) while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = KeySet.verify

        def verify(keys: KeySet, token: str, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            return original(keys, token, **kwargs)

        monkeypatch.setattr(KeySet, "verify", verify)


async def _me_twice_and_introspect(http: httpx.AsyncClient, runtime: Runtime) -> None:
    """The client ``api`` calls /api/v1/me twice with its token, then introspects it."""
    _, secret = await make_client(runtime, client_id="api")
    assert secret is not None
    token = access_token(runtime, subject="api", client_id="api")
    for _ in range(2):
        response = await http.get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 200
    response = await http.post(
        "/oauth/introspect", data={"token": token}, headers=basic("api", secret)
    )
    assert response.json()["active"] is True


async def test_me_and_introspection_share_one_verified_token_cache(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = _CountedVerify(monkeypatch)
    await _me_twice_and_introspect(client, runtime)
    assert counted.calls == 1


async def test_verified_token_cache_size_zero_verifies_every_use(
    db_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    del settings  # requested for the database fixture's clean-up
    app = create_app(make_settings(db_url, verified_token_cache_size=0))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        counted = _CountedVerify(monkeypatch)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            await _me_twice_and_introspect(http, runtime)
    assert counted.calls == 3


async def test_notes_create_list_get_delete_round_trip(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers = bearer(access_token(runtime, subject="user-1", scope="read write"))
    created = await client.post(
        "/api/v1/notes", json={"title": "hello", "body": "world"}, headers=headers
    )
    assert created.status_code == 201
    note = created.json()
    assert set(note) == {"id", "title", "body", "created_at"}
    assert (note["title"], note["body"]) == ("hello", "world")
    assert created.headers["location"] == f"/api/v1/notes/{note['id']}"

    listed = await client.get("/api/v1/notes", headers=headers)
    assert listed.status_code == 200
    assert listed.json() == {"notes": [note]}
    fetched = await client.get(f"/api/v1/notes/{note['id']}", headers=headers)
    assert fetched.json() == note

    deleted = await client.delete(f"/api/v1/notes/{note['id']}", headers=headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    again = await client.delete(f"/api/v1/notes/{note['id']}", headers=headers)
    assert again.status_code == 404
    assert again.json() == {"error": "not_found", "error_description": "No such note."}


async def test_notes_of_another_subject_are_invisible(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    alice = bearer(access_token(runtime, subject="alice"))
    mallory = bearer(access_token(runtime, subject="mallory"))
    created = await client.post("/api/v1/notes", json={"title": "mine"}, headers=alice)
    note_id = created.json()["id"]
    assert (await client.get("/api/v1/notes", headers=mallory)).json() == {"notes": []}
    fetched = await client.get(f"/api/v1/notes/{note_id}", headers=mallory)
    assert fetched.status_code == 404
    deleted = await client.delete(f"/api/v1/notes/{note_id}", headers=mallory)
    assert deleted.status_code == 404
    assert len((await client.get("/api/v1/notes", headers=alice)).json()["notes"]) == 1


async def test_notes_list_newest_first(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers = bearer(access_token(runtime, subject="user-1"))
    base = runtime.clock()
    for i in range(3):
        runtime.clock = lambda i=i: base + timedelta(seconds=i)  # type: ignore[misc]
        await client.post("/api/v1/notes", json={"title": f"n{i}"}, headers=headers)
    listed = (await client.get("/api/v1/notes", headers=headers)).json()["notes"]
    assert [n["title"] for n in listed] == ["n2", "n1", "n0"]


async def test_notes_write_with_read_scope_is_insufficient_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers = bearer(access_token(runtime, subject="user-1", scope="read"))
    response = await client.post("/api/v1/notes", json={"title": "x"}, headers=headers)
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The access token lacks a required scope.",
    }
    assert response.headers["www-authenticate"] == _scope_challenge("write")
    deleted = await client.delete(f"/api/v1/notes/{uuid.uuid4()}", headers=headers)
    assert deleted.status_code == 403


async def test_notes_read_with_write_scope_is_insufficient_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers = bearer(access_token(runtime, subject="user-1", scope="write"))
    response = await client.get("/api/v1/notes", headers=headers)
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == _scope_challenge("read")


async def test_notes_create_with_invalid_body_is_422(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers = bearer(access_token(runtime, subject="user-1"))
    for payload in ({"title": ""}, {"title": "x", "owner": "bob"}, {}):
        response = await client.post("/api/v1/notes", json=payload, headers=headers)
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "invalid_request"
        assert body["error_description"] == "The request is malformed."
        assert body["detail"]


async def test_notes_get_with_malformed_id_is_422(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers = bearer(access_token(runtime, subject="user-1"))
    response = await client.get("/api/v1/notes/not-a-uuid", headers=headers)
    assert response.status_code == 422
