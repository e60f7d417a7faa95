"""Admin API: users' standard claims (OpenID Connect Core §5.1) on create, PATCH and read, with their rules."""

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from oauth_service.runtime import Runtime
from tests.bearer import access_token, bearer
from tests.factories import make_user

CREATED = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PATCHED = datetime(2030, 1, 1, 12, 5, tzinfo=UTC)  # within the admin token's life
CLAIMS: dict[str, Any] = {
    "name": "Bob Smith",
    "given_name": "Bob",
    "family_name": "Smith",
    "preferred_username": "bob",
    "picture": "https://img.example/bob.png",
    "locale": "en-US",
    "zoneinfo": "America/Chicago",
    "email_verified": True,
}


@pytest.fixture
async def admin_headers(runtime: Runtime) -> dict[str, str]:
    runtime.clock = lambda: CREATED
    user, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    return bearer(access_token(runtime, subject=user.id, scope="admin"))


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **claims: Any
) -> httpx.Response:
    payload = {"email": "bob@example.com", "password": "a long password", **claims}
    return await client.post("/admin/users", json=payload, headers=headers)


async def test_create_user_with_claims_returns_and_keeps_them(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await _create(client, admin_headers, **CLAIMS)
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "email": "bob@example.com",
        "is_active": True,
        "is_admin": False,
        **CLAIMS,
        "updated_at": int(CREATED.timestamp()),
    }
    read = await client.get(f"/admin/users/{body['id']}", headers=admin_headers)
    assert read.json() == body
    listed = await client.get("/admin/users", headers=admin_headers)
    assert [u for u in listed.json()["items"] if u["id"] == body["id"]] == [body]


async def test_patch_changes_only_given_claims_clears_and_bumps_updated_at(
    client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    created = (await _create(client, admin_headers, **CLAIMS)).json()
    runtime.clock = lambda: PATCHED
    patch = {"name": "Robert Smith", "picture": "", "zoneinfo": None}
    response = await client.patch(
        f"/admin/users/{created['id']}", json=patch, headers=admin_headers
    )
    assert response.status_code == 200
    expected = {
        **created,
        "name": "Robert Smith",
        "picture": None,
        "zoneinfo": None,
        "updated_at": int(PATCHED.timestamp()),
    }
    assert response.json() == expected
    read = await client.get(f"/admin/users/{created['id']}", headers=admin_headers)
    assert read.json() == expected
    # The change reaches UserInfo at once.
    token = access_token(runtime, subject=created["id"], scope="openid profile")
    userinfo = await client.get("/oauth/userinfo", headers=bearer(token))
    assert userinfo.json() == {
        "sub": created["id"],
        "name": "Robert Smith",
        "given_name": "Bob",
        "family_name": "Smith",
        "preferred_username": "bob",
        "locale": "en-US",
        "updated_at": int(PATCHED.timestamp()),
    }


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        (
            {"picture": "javascript:alert(1)"},
            "picture must be an http or https URL, not 'javascript:alert(1)'",
        ),
        (
            {"locale": "english"},
            "locale must be a BCP 47 language tag such as 'en' or 'en-US', not 'english'",
        ),
        (
            {"zoneinfo": "UTC+2"},
            "zoneinfo must be a time zone name such as 'Europe/Paris', not 'UTC+2'",
        ),
        ({"name": "a\nb"}, "name must not contain control characters"),
        (
            {"picture": "http://[::1"},
            "picture must be an http or https URL, not 'http://[::1'",
        ),
        (
            {"picture": "https://[zz]/"},
            "picture must be an http or https URL, not 'https://[zz]/'",
        ),
    ],
    ids=["picture", "locale", "zoneinfo", "control", "unclosed-ipv6", "bad-ipv6"],
)
async def test_claim_breaking_a_rule_is_400_on_create_and_patch(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    claims: dict[str, Any],
    description: str,
) -> None:
    expected = {"error": "invalid_request", "error_description": description}
    refused = await _create(client, admin_headers, **claims)
    assert (refused.status_code, refused.json()) == (400, expected)
    assert refused.headers["cache-control"] == "no-store"
    user, _ = await make_user(runtime)
    response = await client.patch(
        f"/admin/users/{user.id}", json=claims, headers=admin_headers
    )
    assert (response.status_code, response.json()) == (400, expected)
    unchanged = await client.get(f"/admin/users/{user.id}", headers=admin_headers)
    assert unchanged.json()["name"] is None
    assert unchanged.json()["updated_at"] == int(CREATED.timestamp())


@pytest.mark.parametrize(
    "patch",
    [
        {"name": "x" * 256},
        {"locale": "x" * 36},
        {"email_verified": "maybe"},
        {"email": "new@example.com"},
    ],
    ids=["long-name", "long-locale", "not-bool", "unknown-field"],
)
async def test_malformed_patch_is_422(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    patch: dict[str, Any],
) -> None:
    user, _ = await make_user(runtime)
    response = await client.patch(
        f"/admin/users/{user.id}", json=patch, headers=admin_headers
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("patch", "description"),
    [
        ({}, "nothing to update: give at least one claim"),
        ({"email_verified": None}, "email_verified must be true or false"),
    ],
    ids=["empty", "null-email-verified"],
)
async def test_patch_without_a_change_is_400(
    client: httpx.AsyncClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    patch: dict[str, Any],
    description: str,
) -> None:
    user, _ = await make_user(runtime)
    response = await client.patch(
        f"/admin/users/{user.id}", json=patch, headers=admin_headers
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": description,
    }


async def test_patch_unknown_user_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.patch(
        "/admin/users/no-such-user", json={"name": "X"}, headers=admin_headers
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "error_description": "No such user.",
    }


async def test_patch_needs_an_admin(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, _ = await make_user(runtime)
    token = access_token(runtime, subject=user.id, scope="openid profile")
    response = await client.patch(
        f"/admin/users/{user.id}", json={"name": "Me"}, headers=bearer(token)
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
