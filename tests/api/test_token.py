"""POST /oauth/token over HTTP: every rule of issue 3 with exact JSON bodies and headers (RFC 6749 §2.3, §3.2, §5)."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt as rfc_jwt
from joserfc.jwk import KeySet as RfcKeySet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.db import admin
from oauth_service.oauth.models import Client
from oauth_service.runtime import Runtime
from tests.conftest import ISSUER
from tests.factories import basic_auth, make_client, make_user
from tests.fakes import FixedClock

TOKEN = "/oauth/token"
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
BASIC_CHALLENGE = 'Basic realm="oauth-service", charset="UTF-8"'
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Client authentication failed.",
}
BAD_LOGIN = {
    "error": "invalid_grant",
    "error_description": "Invalid email or password.",
}
BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "The refresh token is invalid, expired or revoked.",
}
ALL_GRANTS = ("client_credentials", "password", "refresh_token")


async def _confidential(runtime: Runtime, **kwargs: Any) -> tuple[Client, str]:
    kwargs.setdefault("grant_types", ALL_GRANTS)
    client, secret = await make_client(runtime, **kwargs)
    assert secret is not None
    return client, secret


def _assert_token_response(
    response: httpx.Response, *, scope: str, refresh: bool
) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert {k: response.headers[k] for k in NO_STORE} == NO_STORE
    body: dict[str, Any] = response.json()
    assert isinstance(body.pop("access_token"), str)
    refresh_token = body.pop("refresh_token", None)
    assert (refresh_token is not None) is refresh
    assert body == {"token_type": "Bearer", "expires_in": 600, "scope": scope}
    return dict(response.json())


def _assert_error(
    response: httpx.Response,
    status: int,
    body: dict[str, str],
    *,
    challenge: bool = False,
) -> None:
    assert response.status_code == status
    assert response.json() == body
    assert {k: response.headers[k] for k in NO_STORE} == NO_STORE
    assert response.headers.get("www-authenticate") == (
        BASIC_CHALLENGE if challenge else None
    )


async def _claims(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """Verify the JWT with an independent library against the published JWKS."""
    jwks = (await client.get("/.well-known/jwks.json")).json()
    decoded = rfc_jwt.decode(token, RfcKeySet.import_key_set(jwks))
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["alg"] == "RS256"
    assert decoded.header["kid"] in {key["kid"] for key in jwks["keys"]}
    rfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": ISSUER},
    ).validate(decoded.claims)
    return dict(decoded.claims)


# --- client_credentials ----------------------------------------------------------------------------------


async def test_token_client_credentials_basic_issues_jwt(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(runtime)
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic_auth(app_client.client_id, secret),
    )
    body = _assert_token_response(response, scope="read write", refresh=False)
    claims = await _claims(client, body["access_token"])
    assert set(claims) == {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
    }
    assert claims["sub"] == claims["client_id"] == app_client.client_id
    assert claims["scope"] == "read write"
    assert claims["exp"] - claims["iat"] == 600


async def test_token_client_credentials_post_with_narrowed_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(runtime)
    form = {
        "grant_type": "client_credentials",
        "client_id": app_client.client_id,
        "client_secret": secret,
        "scope": "read",
    }
    _assert_token_response(
        await client.post(TOKEN, data=form), scope="read", refresh=False
    )


async def test_token_client_credentials_public_client_is_invalid_client(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    spa, _ = await make_client(runtime, grant_types=("password",), is_public=True)
    form = {"grant_type": "client_credentials", "client_id": spa.client_id}
    _assert_error(await client.post(TOKEN, data=form), 400, INVALID_CLIENT)


# --- password -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["email", "username"])
async def test_token_password_issues_access_and_refresh(
    client: httpx.AsyncClient, runtime: Runtime, field: str
) -> None:
    app_client, secret = await _confidential(runtime)
    user, password = await make_user(runtime)
    form = {"grant_type": "password", field: user.email, "password": password}
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    body = _assert_token_response(response, scope="read write", refresh=True)
    claims = await _claims(client, body["access_token"])
    assert claims["sub"] == user.id
    assert claims["client_id"] == app_client.client_id
    assert claims["auth_time"] == claims["iat"]


async def test_token_password_public_client_with_empty_basic_secret_succeeds(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    # What Swagger UI's password flow sends for the public docs client: Basic with an empty secret.
    spa, _ = await make_client(runtime, grant_types=("password",), is_public=True)
    user, password = await make_user(runtime)
    form = {"grant_type": "password", "username": user.email, "password": password}
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(spa.client_id, "")
    )
    _assert_token_response(response, scope="read write", refresh=False)


async def test_token_password_public_client_without_secret_succeeds(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    spa, _ = await make_client(
        runtime, grant_types=("password", "refresh_token"), is_public=True
    )
    user, password = await make_user(runtime)
    form = {
        "grant_type": "password",
        "client_id": spa.client_id,
        "email": user.email,
        "password": password,
    }
    _assert_token_response(
        await client.post(TOKEN, data=form), scope="read write", refresh=True
    )


@pytest.mark.parametrize("case", ["wrong-password", "unknown-email", "inactive-user"])
async def test_token_password_bad_login_is_identical_invalid_grant(
    client: httpx.AsyncClient, runtime: Runtime, case: str
) -> None:
    app_client, secret = await _confidential(runtime)
    user, password = await make_user(runtime)
    email = user.email
    if case == "wrong-password":
        password = "not the password"
    elif case == "unknown-email":
        email = "nobody@example.com"
    else:
        async with runtime.sessionmaker() as session:
            await admin.deactivate_user(session, user_id=user.id)
            await session.commit()
    form = {"grant_type": "password", "email": email, "password": password}
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    _assert_error(response, 400, BAD_LOGIN)


async def test_token_password_admin_scope_for_non_admin_is_invalid_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(runtime, scopes=("read", "write", "admin"))
    user, password = await make_user(runtime)
    form = {
        "grant_type": "password",
        "email": user.email,
        "password": password,
        "scope": "admin",
    }
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    _assert_error(
        response,
        400,
        {
            "error": "invalid_scope",
            "error_description": "The requested scope exceeds what may be granted.",
        },
    )
    del form["scope"]
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    _assert_token_response(response, scope="read write", refresh=True)


async def test_token_password_admin_user_gets_admin_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(runtime, scopes=("read", "admin"))
    user, password = await make_user(runtime, is_admin=True)
    form = {
        "grant_type": "password",
        "email": user.email,
        "password": password,
        "scope": "admin",
    }
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    _assert_token_response(response, scope="admin", refresh=True)


async def test_token_password_missing_password_is_invalid_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(runtime)
    form = {"grant_type": "password", "email": "a@example.com", "password": ""}
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    _assert_error(
        response,
        400,
        {
            "error": "invalid_request",
            "error_description": "Missing 'password' parameter.",
        },
    )


# --- refresh_token --------------------------------------------------------------------------------------


async def _password_tokens(
    client: httpx.AsyncClient, runtime: Runtime
) -> tuple[dict[str, str], dict[str, Any]]:
    app_client, secret = await _confidential(runtime)
    user, password = await make_user(runtime)
    headers = basic_auth(app_client.client_id, secret)
    form = {"grant_type": "password", "email": user.email, "password": password}
    response = await client.post(TOKEN, data=form, headers=headers)
    return headers, _assert_token_response(response, scope="read write", refresh=True)


async def test_token_refresh_rotates_pair(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers, first = await _password_tokens(client, runtime)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "scope": "read",
    }
    second = _assert_token_response(
        await client.post(TOKEN, data=form, headers=headers), scope="read", refresh=True
    )
    assert second["refresh_token"] != first["refresh_token"]
    claims = await _claims(client, second["access_token"])
    assert claims["scope"] == "read"
    # The new refresh token keeps the original scope (RFC 6749 §6).
    form = {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
    _assert_token_response(
        await client.post(TOKEN, data=form, headers=headers),
        scope="read write",
        refresh=True,
    )


async def test_token_refresh_with_reused_token_revokes_family(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    headers, first = await _password_tokens(client, runtime)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = _assert_token_response(
        await client.post(TOKEN, data=form, headers=headers),
        scope="read write",
        refresh=True,
    )
    _assert_error(
        await client.post(TOKEN, data=form, headers=headers), 400, BAD_REFRESH
    )
    # Checked on a fresh connection: the revocation was committed despite the error response.
    async with database.connect() as conn:
        live = await conn.scalar(
            text("SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NULL")
        )
        revoked = set(
            (await conn.execute(text("SELECT jti FROM revoked_tokens"))).scalars()
        )
    assert live == 0
    first_jti = (await _claims(client, first["access_token"]))["jti"]
    second_jti = (await _claims(client, second["access_token"]))["jti"]
    assert revoked == {first_jti, second_jti}
    form = {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
    _assert_error(
        await client.post(TOKEN, data=form, headers=headers), 400, BAD_REFRESH
    )


async def test_token_refresh_by_other_client_is_invalid_grant(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, first = await _password_tokens(client, runtime)
    other, secret = await _confidential(runtime, name="other")
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(other.client_id, secret)
    )
    _assert_error(response, 400, BAD_REFRESH)


async def test_token_refresh_wider_scope_is_invalid_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    headers, first = await _password_tokens(client, runtime)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "scope": "read admin",
    }
    _assert_error(
        await client.post(TOKEN, data=form, headers=headers),
        400,
        {
            "error": "invalid_scope",
            "error_description": "The requested scope exceeds what may be granted.",
        },
    )


@pytest.mark.parametrize("days", [14, 30], ids=["idle", "absolute"])
async def test_token_refresh_expired_is_invalid_grant(
    client: httpx.AsyncClient, runtime: Runtime, days: int
) -> None:
    headers, first = await _password_tokens(client, runtime)
    clock = FixedClock(runtime.clock())
    runtime.clock = clock
    token = first["refresh_token"]
    if (
        days == 30
    ):  # keep it from idling out: refresh every 13 days until the family ends
        for _ in range(2):
            clock.advance(days=13)
            form = {"grant_type": "refresh_token", "refresh_token": token}
            token = (await client.post(TOKEN, data=form, headers=headers)).json()[
                "refresh_token"
            ]
        clock.advance(days=4, seconds=1)
    else:
        clock.advance(days=14)
    form = {"grant_type": "refresh_token", "refresh_token": token}
    _assert_error(
        await client.post(TOKEN, data=form, headers=headers), 400, BAD_REFRESH
    )


async def test_token_refresh_unknown_token_is_invalid_grant(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(runtime)
    form = {"grant_type": "refresh_token", "refresh_token": "forged"}
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    _assert_error(response, 400, BAD_REFRESH)


# --- dispatcher and client authentication ---------------------------------------------------------------


async def test_token_unknown_grant_is_unsupported_grant_type(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(TOKEN, data={"grant_type": "urn:example:magic"})
    _assert_error(
        response,
        400,
        {
            "error": "unsupported_grant_type",
            "error_description": "The grant type is not supported.",
        },
    )


async def test_token_grant_not_allowed_for_client_is_unauthorized_client(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(
        runtime, grant_types=("client_credentials",)
    )
    user, password = await make_user(runtime)
    form = {"grant_type": "password", "email": user.email, "password": password}
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    _assert_error(
        response,
        400,
        {
            "error": "unauthorized_client",
            "error_description": "The client is not allowed to use this grant type.",
        },
    )


async def test_token_wrong_secret_with_basic_is_401_with_challenge(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, _ = await _confidential(runtime)
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic_auth(app_client.client_id, "nope"),
    )
    _assert_error(response, 401, INVALID_CLIENT, challenge=True)


@pytest.mark.parametrize(
    "form_extra", [{"client_secret": "nope"}, {}], ids=["wrong-secret", "no-secret"]
)
async def test_token_bad_post_credentials_is_400_invalid_client(
    client: httpx.AsyncClient, runtime: Runtime, form_extra: dict[str, str]
) -> None:
    app_client, _ = await _confidential(runtime)
    form = {
        "grant_type": "client_credentials",
        "client_id": app_client.client_id,
        **form_extra,
    }
    _assert_error(await client.post(TOKEN, data=form), 400, INVALID_CLIENT)


async def test_token_unknown_client_basic_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic_auth("ghost", "x"),
    )
    _assert_error(response, 401, INVALID_CLIENT, challenge=True)


async def test_token_malformed_basic_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic !!!"},
    )
    _assert_error(
        response,
        401,
        {
            "error": "invalid_client",
            "error_description": "Malformed Basic credentials.",
        },
        challenge=True,
    )


async def test_token_basic_credentials_are_form_urldecoded(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, secret = await _confidential(runtime, client_id="my-app.v2")
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic_auth("my%2Dapp.v2", secret),
    )
    _assert_token_response(response, scope="read write", refresh=False)


async def test_token_with_basic_and_post_credentials_is_invalid_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(runtime)
    form = {"grant_type": "client_credentials", "client_secret": secret}
    response = await client.post(
        TOKEN, data=form, headers=basic_auth(app_client.client_id, secret)
    )
    _assert_error(
        response,
        400,
        {
            "error": "invalid_request",
            "error_description": "Use only one client authentication method.",
        },
    )


# --- request format --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "description"),
    [
        (
            {"json": {"grant_type": "client_credentials"}},
            "The content type must be application/x-www-form-urlencoded.",
        ),
        (
            {
                "content": b"grant_type=a&grant_type=b",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "Parameter 'grant_type' is repeated.",
        ),
        (
            {
                "content": b"a%22=1&a%22=2",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "Parameter is repeated.",
        ),
        (
            {
                "content": b"grant_type=\xff",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "The request body is not valid UTF-8 form data.",
        ),
        (
            {
                "content": b"grant_type=%ff",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "The request body is not valid UTF-8 form data.",
        ),
        (
            {
                "content": b"grant_type=x",
                "headers": {
                    "Content-Type": "application/x-www-form-urlencoded; charset=latin-1"
                },
            },
            "The request body must be UTF-8.",
        ),
        ({"data": {"scope": "read"}}, "Missing 'grant_type' parameter."),
        ({"data": {"grant_type": ""}}, "Missing 'grant_type' parameter."),
    ],
    ids=[
        "json",
        "repeated",
        "repeated-unsafe-name",
        "invalid-utf8",
        "invalid-utf8-escape",
        "charset",
        "missing-grant",
        "empty-grant",
    ],
)
async def test_token_malformed_request_is_invalid_request(
    client: httpx.AsyncClient, kwargs: dict[str, Any], description: str
) -> None:
    response = await client.post(TOKEN, **kwargs)
    _assert_error(
        response, 400, {"error": "invalid_request", "error_description": description}
    )


@pytest.mark.parametrize("param", ["client_secret", "password"])
async def test_token_credentials_in_query_string_are_refused(
    client: httpx.AsyncClient, param: str
) -> None:
    response = await client.post(
        f"{TOKEN}?{param}=leak", data={"grant_type": "client_credentials"}
    )
    _assert_error(
        response,
        400,
        {
            "error": "invalid_request",
            "error_description": "Credentials must not be sent in the URL query string.",
        },
    )


async def test_token_get_is_405(client: httpx.AsyncClient) -> None:
    response = await client.get(TOKEN)
    assert response.status_code == 405
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Method not allowed.",
    }
    assert response.headers["allow"] == "POST"


async def test_token_openapi_documents_form_fields(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/oauth/token"]["post"]["requestBody"]
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {
        "grant_type",
        "email",
        "username",
        "password",
        "refresh_token",
        "scope",
    } <= set(schema["properties"])


async def test_token_access_token_ttl_follows_clock(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    app_client, secret = await _confidential(runtime)
    clock = FixedClock(runtime.clock() - timedelta(minutes=5))
    runtime.clock = clock
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic_auth(app_client.client_id, secret),
    )
    claims = await _claims(client, response.json()["access_token"])
    assert claims["iat"] == int(clock().timestamp())
