"""Admin API: admin-only access, clients, users, scopes, signed pagination cursors, clear 400/422 bodies."""

import time

import httpx
import pytest

from oauth_service.crypto.tokens import verify_token_hash
from oauth_service.runtime import Runtime
from tests.bearer import access_token, bearer
from tests.factories import make_client, make_user

NO_STORE = "no-store"
# A user created without standard claims (tests/api/test_admin_user_claims.py sets them).
UNSET_CLAIMS = {
    "name": None,
    "given_name": None,
    "family_name": None,
    "preferred_username": None,
    "picture": None,
    "locale": None,
    "zoneinfo": None,
    "email_verified": False,
}


@pytest.fixture
async def admin_headers(runtime: Runtime) -> dict[str, str]:
    user, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    return bearer(access_token(runtime, subject=user.id, scope="admin read"))


async def _stored_secret_hash(runtime: Runtime, client_id: str) -> str | None:
    stored = await runtime.stores.clients.reload(client_id)
    assert stored is not None
    return stored.secret_hash


def _admin_challenge(description: str) -> str:
    return (
        'Bearer realm="oauth-service", error="insufficient_scope", '
        f'error_description="{description}", scope="admin"'
    )


# --- access ------------------------------------------------------------------------------------------------


async def test_admin_without_token_is_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/clients")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="oauth-service"'


async def test_admin_with_non_admin_user_is_insufficient_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, _ = await make_user(runtime)
    token = access_token(runtime, subject=user.id, scope="admin")
    response = await client.get("/admin/users", headers=bearer(token))
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "An administrator's access token is required.",
    }
    assert response.headers["www-authenticate"] == _admin_challenge(
        "An administrator's access token is required."
    )


async def test_admin_with_admin_user_without_admin_scope_is_insufficient_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, _ = await make_user(runtime, is_admin=True)
    token = access_token(runtime, subject=user.id, scope="read write")
    response = await client.get("/admin/scopes", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == _admin_challenge(
        "The access token lacks a required scope."
    )


async def test_admin_with_client_token_is_insufficient_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = access_token(runtime, subject="svc", client_id="svc", scope="admin")
    response = await client.get("/admin/clients", headers=bearer(token))
    assert response.status_code == 403


async def test_admin_with_deactivated_admin_is_invalid_token(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    other, _ = await make_user(runtime, email="other@example.com", is_admin=True)
    other_headers = bearer(access_token(runtime, subject=other.id, scope="admin"))
    response = await client.post(
        f"/admin/users/{other.id}/deactivate", headers=admin_headers
    )
    assert response.status_code == 200
    response = await client.get("/admin/users", headers=other_headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


# --- clients -----------------------------------------------------------------------------------------------


async def test_admin_create_confidential_client_returns_secret_once(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    payload = {
        "client_name": "Billing",
        "grant_types": ["client_credentials"],
        "scope": "read write",
    }
    before = int(time.time())
    response = await client.post(
        "/admin/clients",
        json={**payload, "client_id": "billing"},
        headers=admin_headers,
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == NO_STORE
    assert response.headers["location"] == "/admin/clients/billing"
    body = response.json()
    secret = body.pop("client_secret")
    assert isinstance(secret, str)
    assert len(secret) >= 43
    assert before <= body["client_id_issued_at"] <= time.time()
    assert body == {
        "client_id": "billing",
        "client_name": "Billing",
        "scope": "read write",
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "token_endpoint_auth_method": "client_secret_basic",
        "first_party": False,
        "post_logout_redirect_uris": [],
        "backchannel_logout_uri": None,
        "backchannel_logout_session_required": False,
        "client_id_issued_at": body["client_id_issued_at"],
        "client_secret_expires_at": 0,
    }
    stored_hash = await _stored_secret_hash(runtime, "billing")
    assert stored_hash is not None
    assert verify_token_hash(secret, stored_hash)
    fetched = await client.get("/admin/clients/billing", headers=admin_headers)
    del body["client_secret_expires_at"]
    assert fetched.json() == body


async def test_admin_create_public_client_has_no_secret_fields(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    payload = {
        "client_name": "SPA",
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://spa.example.com/cb"],
        "token_endpoint_auth_method": "none",
        "first_party": True,
    }
    response = await client.post("/admin/clients", json=payload, headers=admin_headers)
    assert response.status_code == 201
    body = response.json()
    assert "client_secret" not in body
    assert "client_secret_expires_at" not in body
    assert (body["token_endpoint_auth_method"], body["first_party"], body["scope"]) == (
        "none",
        True,
        "",
    )


async def test_admin_create_client_secret_post_registers_confidential_basic(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    payload = {
        "client_name": "Poster",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
        "client_id": "poster",
    }
    response = await client.post("/admin/clients", json=payload, headers=admin_headers)
    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    # Both methods work for it, as for every confidential client.
    grant = {"grant_type": "client_credentials"}
    basic = await client.post(
        "/oauth/token", data=grant, auth=("poster", body["client_secret"])
    )
    post = await client.post(
        "/oauth/token",
        data={**grant, "client_id": "poster", "client_secret": body["client_secret"]},
    )
    assert (basic.status_code, post.status_code) == (200, 200)


@pytest.mark.parametrize(
    ("payload", "description"),
    [
        (
            {"client_name": "x", "grant_types": ["magic"]},
            "unknown grant type 'magic' (known: authorization_code, client_credentials, "
            "implicit, password, refresh_token)",
        ),
        (
            {"client_name": "x", "grant_types": ["authorization_code"]},
            "grant type 'authorization_code' needs at least one redirect URI",
        ),
        (
            {
                "client_name": "x",
                "grant_types": ["client_credentials"],
                "scope": "nope",
            },
            "unknown scope 'nope' (create it with: scopes create)",
        ),
        (
            {
                "client_name": "x",
                "grant_types": ["authorization_code"],
                "redirect_uris": ["http://evil.example.com/cb"],
            },
            "redirect URI 'http://evil.example.com/cb' must use https "
            "(http only for 127.0.0.1, [::1] or localhost)",
        ),
    ],
    ids=["unknown-grant", "no-redirect-uri", "unknown-scope", "http-redirect"],
)
async def test_admin_create_client_breaking_a_rule_is_400(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    payload: dict[str, object],
    description: str,
) -> None:
    response = await client.post("/admin/clients", json=payload, headers=admin_headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": description,
    }


async def test_admin_create_client_with_duplicate_id_is_400(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    payload = {
        "client_name": "a",
        "grant_types": ["client_credentials"],
        "client_id": "dup",
    }
    assert (
        await client.post("/admin/clients", json=payload, headers=admin_headers)
    ).status_code == 201
    response = await client.post("/admin/clients", json=payload, headers=admin_headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "client_id 'dup' already exists",
    }


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"client_name": "x"},
        {"client_name": "x", "grant_types": []},
        {"client_name": "x", "grant_types": ["password"], "secret": "s"},
        {"client_name": "x", "grant_types": ["password"], "client_secret": "s"},
        {
            "client_name": "x",
            "grant_types": ["password"],
            "token_endpoint_auth_method": "private_key_jwt",
        },
    ],
    ids=[
        "empty",
        "no-grants",
        "empty-grants",
        "unknown-field",
        "secret-chosen",
        "unsupported-auth-method",
    ],
)
async def test_admin_create_client_with_malformed_body_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], payload: dict[str, object]
) -> None:
    response = await client.post("/admin/clients", json=payload, headers=admin_headers)
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["error_description"]) == (
        "invalid_request",
        "The request is malformed.",
    )
    assert body["detail"]
    assert all({"loc", "msg", "type"} <= set(d) for d in body["detail"])


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (
            {"name": "x", "grant_types": ["password"]},
            [(["body", "name"], "renamed: send 'client_name'", "renamed_field")],
        ),
        (
            {"client_name": "x", "grant_types": ["password"], "scopes": ["read"]},
            [
                (
                    ["body", "scopes"],
                    "renamed: send 'scope', one space-separated string such as "
                    '"read write"',
                    "renamed_field",
                )
            ],
        ),
        (
            {
                "client_name": "x",
                "grant_types": ["password"],
                "is_public": True,
                "is_first_party": True,
            },
            [
                (
                    ["body", "is_public"],
                    "replaced: send 'token_endpoint_auth_method': 'none' for a public "
                    "client (no secret), 'client_secret_basic' for a confidential one",
                    "renamed_field",
                ),
                (
                    ["body", "is_first_party"],
                    "renamed: send 'first_party'",
                    "renamed_field",
                ),
            ],
        ),
        (
            {"client_name": "x", "grant_types": ["password"], "scope": ["read"]},
            [
                (
                    ["body", "scope"],
                    'scope is one space-separated string, such as "read write", '
                    "not a list",
                    "scope_string",
                )
            ],
        ),
    ],
    ids=["name", "scopes", "is_public-and-is_first_party", "scope-list"],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_admin_client_body_with_old_names_is_422_naming_the_new_ones(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    payload: dict[str, object],
    detail: list[tuple[list[str], str, str]],
    method: str,
) -> None:
    await make_client(runtime, client_id="svc")
    path = "/admin/clients" if method == "POST" else "/admin/clients/svc"
    response = await client.request(method, path, json=payload, headers=admin_headers)
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The request is malformed.",
        "detail": [{"loc": loc, "msg": msg, "type": kind} for loc, msg, kind in detail],
    }


async def test_admin_create_client_with_malformed_scope_token_is_400(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    payload = {
        "client_name": "x",
        "grant_types": ["client_credentials"],
        "scope": 'read bad"scope',
    }
    response = await client.post("/admin/clients", json=payload, headers=admin_headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "scope 'bad\"scope' is not a valid scope token "
        "(printable ASCII, no space, quote or backslash)",
    }


async def test_admin_update_client_changes_given_fields_only(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    await make_client(runtime, client_id="svc", name="Old", scopes=("read",))
    response = await client.patch(
        "/admin/clients/svc",
        json={"client_name": "New", "scope": "write read", "first_party": True},
        headers=admin_headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert (
        body["client_name"],
        body["scope"],
        body["grant_types"],
        body["first_party"],
    ) == ("New", "read write", ["client_credentials"], True)


async def test_admin_update_client_with_its_own_registration_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    await make_client(runtime, client_id="svc")
    read = (await client.get("/admin/clients/svc", headers=admin_headers)).json()
    writable = {
        k: v for k, v in read.items() if k not in {"client_id", "client_id_issued_at"}
    }
    response = await client.patch(
        "/admin/clients/svc", json=writable, headers=admin_headers
    )
    assert (response.status_code, response.json()) == (200, read)


@pytest.mark.parametrize(
    ("is_public", "method"),
    [(False, "none"), (True, "client_secret_basic"), (True, "client_secret_post")],
    ids=["confidential-to-public", "public-to-basic", "public-to-post"],
)
async def test_admin_update_client_changing_its_type_is_400(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    is_public: bool,
    method: str,
) -> None:
    await make_client(
        runtime,
        client_id="app",
        is_public=is_public,
        grant_types=("authorization_code",),
        redirect_uris=("https://app.example.com/cb",),
    )
    response = await client.patch(
        "/admin/clients/app",
        json={"token_endpoint_auth_method": method},
        headers=admin_headers,
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "token_endpoint_auth_method cannot change between 'none' "
        "(public) and a secret method (confidential): register a new client",
    }


async def test_admin_update_client_breaking_a_rule_is_400(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    await make_client(runtime, client_id="svc")
    response = await client.patch(
        "/admin/clients/svc", json={"grant_types": ["implicit"]}, headers=admin_headers
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "grant type 'implicit' needs at least one redirect URI",
    }


async def test_admin_unknown_client_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    expected = {"error": "not_found", "error_description": "No such client."}
    for method, path, payload in (
        ("GET", "/admin/clients/ghost", None),
        ("PATCH", "/admin/clients/ghost", {"client_name": "x"}),
        ("POST", "/admin/clients/ghost/secret", None),
        ("DELETE", "/admin/clients/ghost", None),
    ):
        response = await client.request(
            method, path, json=payload, headers=admin_headers
        )
        assert (response.status_code, response.json()) == (404, expected), (
            method,
            path,
        )


async def test_admin_rotate_secret_replaces_the_old_one(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    _, old_secret = await make_client(runtime, client_id="svc")
    assert old_secret is not None
    response = await client.post("/admin/clients/svc/secret", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["cache-control"] == NO_STORE
    body = response.json()
    assert set(body) == {"client_id", "client_secret", "client_secret_expires_at"}
    assert body["client_secret_expires_at"] == 0
    assert body["client_id"] == "svc"
    stored_hash = await _stored_secret_hash(runtime, "svc")
    assert stored_hash is not None
    assert verify_token_hash(body["client_secret"], stored_hash)
    assert not verify_token_hash(old_secret, stored_hash)


async def test_admin_rotate_secret_of_public_client_is_400(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    await make_client(
        runtime,
        client_id="spa",
        grant_types=("authorization_code",),
        redirect_uris=("https://spa.example.com/cb",),
        is_public=True,
    )
    response = await client.post("/admin/clients/spa/secret", headers=admin_headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "client 'spa' is public and has no secret",
    }


async def test_admin_delete_client_removes_it(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    await make_client(runtime, client_id="svc")
    response = await client.delete("/admin/clients/svc", headers=admin_headers)
    assert response.status_code == 204
    assert (
        await client.get("/admin/clients/svc", headers=admin_headers)
    ).status_code == 404


async def test_admin_list_clients_pages_with_signed_cursor(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    for client_id in ("c-b", "c-a", "c-c"):
        await make_client(runtime, client_id=client_id)
    first = await client.get(
        "/admin/clients", params={"limit": 2}, headers=admin_headers
    )
    assert first.status_code == 200
    page = first.json()
    assert [c["client_id"] for c in page["items"]] == ["c-a", "c-b"]
    assert page["next_cursor"]
    second = await client.get(
        "/admin/clients",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=admin_headers,
    )
    assert [c["client_id"] for c in second.json()["items"]] == ["c-c"]
    assert second.json()["next_cursor"] is None


async def test_admin_list_with_tampered_or_foreign_cursor_is_400(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    await make_user(runtime, email="a@example.com")
    users = await client.get("/admin/users", params={"limit": 1}, headers=admin_headers)
    cursor = users.json()["next_cursor"]
    assert cursor
    payload, _, mac = cursor.partition(".")
    forged = "eg." + mac  # another position with the old signature
    expected = {
        "error": "invalid_request",
        "error_description": "The cursor is invalid.",
    }
    for path, bad in (
        ("/admin/users", forged),
        ("/admin/users", "garbage"),
        ("/admin/users", payload + ".%%%"),
        ("/admin/clients", cursor),  # a users cursor on clients
    ):
        response = await client.get(path, params={"cursor": bad}, headers=admin_headers)
        assert (response.status_code, response.json()) == (400, expected), (path, bad)
        assert response.headers["cache-control"] == NO_STORE


async def test_admin_list_with_bad_limit_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for limit in ("0", "201", "x"):
        response = await client.get(
            "/admin/scopes", params={"limit": limit}, headers=admin_headers
        )
        assert response.status_code == 422


# --- users -------------------------------------------------------------------------------------------------


async def test_admin_create_user_returns_user_without_password(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    payload = {"email": "Bob@Example.com", "password": "a long password"}
    response = await client.post("/admin/users", json=payload, headers=admin_headers)
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "email": "Bob@Example.com",
        "is_active": True,
        "is_admin": False,
        **UNSET_CLAIMS,
        "updated_at": body["updated_at"],
    }
    assert response.headers["location"] == f"/admin/users/{body['id']}"
    assert (
        await client.get(f"/admin/users/{body['id']}", headers=admin_headers)
    ).json() == body


@pytest.mark.parametrize(
    ("payload", "description"),
    [
        (
            {"email": "root@EXAMPLE.com", "password": "a long password"},
            "a user with email 'root@example.com' already exists",
        ),
        (
            {"email": "not-an-email", "password": "a long password"},
            "invalid email address 'not-an-email'",
        ),
        (
            {"email": "c@example.com", "password": "short"},
            "password must be at least 8 characters",
        ),
    ],
    ids=["duplicate", "bad-email", "short-password"],
)
async def test_admin_create_user_breaking_a_rule_is_400(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    payload: dict[str, str],
    description: str,
) -> None:
    response = await client.post("/admin/users", json=payload, headers=admin_headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": description,
    }


async def test_admin_deactivate_user(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    user, _ = await make_user(runtime)
    response = await client.post(
        f"/admin/users/{user.id}/deactivate", headers=admin_headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": user.id,
        "email": "alice@example.com",
        "is_active": False,
        "is_admin": False,
        **UNSET_CLAIMS,
        "updated_at": body["updated_at"],
    }
    token = access_token(runtime, subject=user.id)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401


async def test_admin_deactivate_self_is_400(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    me, _ = await make_user(runtime, is_admin=True)
    headers = bearer(access_token(runtime, subject=me.id, scope="admin"))
    response = await client.post(f"/admin/users/{me.id}/deactivate", headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "you cannot deactivate your own account",
    }


async def test_admin_reset_password_sets_new_password(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    user, old = await make_user(runtime)
    response = await client.post(
        f"/admin/users/{user.id}/password",
        json={"password": "brand new secret"},
        headers=admin_headers,
    )
    assert response.status_code == 200
    stored = await runtime.stores.users.get(user.id)
    assert stored is not None
    assert (await runtime.passwords.verify(stored.password_hash, "brand new secret")).ok
    assert not (await runtime.passwords.verify(stored.password_hash, old)).ok
    short = await client.post(
        f"/admin/users/{user.id}/password",
        json={"password": "short"},
        headers=admin_headers,
    )
    assert short.status_code == 400


async def test_admin_unknown_user_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    expected = {"error": "not_found", "error_description": "No such user."}
    for path, payload in (
        ("/admin/users/ghost/deactivate", None),
        ("/admin/users/ghost/password", {"password": "a long password"}),
    ):
        response = await client.post(path, json=payload, headers=admin_headers)
        assert (response.status_code, response.json()) == (404, expected)
    response = await client.get("/admin/users/ghost", headers=admin_headers)
    assert (response.status_code, response.json()) == (404, expected)


async def test_admin_list_users_pages_by_email(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    await make_user(runtime, email="b@example.com")
    await make_user(runtime, email="a@example.com")
    emails: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get("/admin/users", params=params, headers=admin_headers)
        ).json()
        emails += [u["email"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert emails == ["a@example.com", "b@example.com", "root@example.com"]


# --- scopes ------------------------------------------------------------------------------------------------


async def test_admin_scopes_list_and_create(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await client.post(
        "/admin/scopes",
        json={"name": "notes:read", "description": "Read notes"},
        headers=admin_headers,
    )
    assert created.status_code == 201
    assert created.json() == {"name": "notes:read", "description": "Read notes"}
    listed = (await client.get("/admin/scopes", headers=admin_headers)).json()
    # With the OpenID Connect scopes migration 0004 seeds.
    assert [s["name"] for s in listed["items"]] == [
        "admin",
        "email",
        "notes:read",
        "offline_access",
        "openid",
        "profile",
        "read",
        "write",
    ]
    assert listed["next_cursor"] is None


@pytest.mark.parametrize(
    ("name", "description"),
    [
        (
            "a b",
            "scope 'a b' is not a valid scope token (printable ASCII, no space, quote or backslash)",
        ),
        ("read", "scope 'read' already exists"),
    ],
    ids=["bad-token", "duplicate"],
)
async def test_admin_create_scope_breaking_a_rule_is_400(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    name: str,
    description: str,
) -> None:
    response = await client.post(
        "/admin/scopes", json={"name": name}, headers=admin_headers
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": description,
    }
