"""The authorization endpoint and its pages over HTTP: validation order, error rendering, login, consent,
remembered consent, ``prompt``, cookies, CSRF and page security headers."""

from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.models import Client
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    fragment_of,
    hidden,
    new_pkce,
    query_of,
    submit_consent,
    submit_login,
)
from tests.conftest import ISSUER
from tests.factories import make_client, make_user

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
PAGE_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


# The login and consent forms end in a redirect to the client, which form-action governs too (browsers check
# it on redirects after a submission): those pages allow the redirect URI's origin besides 'self'.
TO_CLIENT = "'self' https://app.example"


def assert_page_headers(response: httpx.Response, form_action: str = "'self'") -> None:
    for name, value in PAGE_HEADERS.items():
        assert response.headers[name] == value
    directives = [
        d.strip() for d in response.headers["content-security-policy"].split(";")
    ]
    assert "frame-ancestors 'none'" in directives
    assert f"form-action {form_action}" in directives
    assert response.headers["content-type"].startswith("text/html")


async def code_client(runtime: Runtime, **overrides: object) -> Client:
    values: dict[str, object] = {
        "name": "Photo App",
        "grant_types": ("authorization_code", "refresh_token"),
        "redirect_uris": (CALLBACK,),
        "scopes": ("read", "write", "admin"),
        "client_id": "photos",
    }
    values.update(overrides)
    client, _secret = await make_client(runtime, **values)  # type: ignore[arg-type]
    return client


def code_url(**extra: str) -> str:
    _verifier, challenge = new_pkce()
    params = {
        "response_type": "code",
        "client_id": "photos",
        "redirect_uri": CALLBACK,
        "scope": "read",
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return authorize_url(**params)


# --- errors before the redirect URI is trusted: an HTML page, never a redirect ---------------------------


@pytest.mark.parametrize(
    ("params", "text_fragment"),
    [
        ({"response_type": "code", "client_id": "nobody"}, "Unknown client."),
        ({"response_type": "code"}, "Missing &#39;client_id&#39; parameter."),
        (
            {
                "response_type": "code",
                "client_id": "photos",
                "redirect_uri": "https://evil.example/cb",
            },
            "redirect_uri does not match a registered one.",
        ),
    ],
    ids=["unknown-client", "missing-client", "foreign-redirect-uri"],
)
async def test_authorize_untrusted_target_renders_400_page(
    client: httpx.AsyncClient,
    runtime: Runtime,
    params: dict[str, str],
    text_fragment: str,
) -> None:
    await code_client(runtime)
    response = await client.get(authorize_url(**params))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert text_fragment in response.text
    assert_page_headers(response)


async def test_authorize_repeated_redirect_uri_renders_400_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await code_client(runtime)
    url = code_url() + "&redirect_uri=" + CALLBACK
    response = await client.get(url)
    assert response.status_code == 400
    assert "The &#39;redirect_uri&#39; parameter is repeated." in response.text


# --- errors after it: redirected with error, error_description, state, iss ------------------------------


async def test_authorize_unsupported_response_type_redirects_in_query(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await code_client(runtime)
    response = await client.get(code_url(response_type="bogus"))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    assert query_of(location) == {
        "error": "unsupported_response_type",
        "error_description": "Unsupported response_type.",
        "state": "st-1",
        "iss": ISSUER,
    }
    assert response.headers["cache-control"] == "no-store"


async def test_authorize_token_for_code_only_client_redirects_in_fragment(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await code_client(runtime)
    response = await client.get(
        authorize_url(response_type="token", client_id="photos", state="s")
    )
    assert response.status_code == 302
    location = response.headers["location"]
    assert urlsplit(location).query == ""
    assert fragment_of(location) == {
        "error": "unauthorized_client",
        "error_description": "The client may not use this response_type.",
        "state": "s",
        "iss": ISSUER,
    }


async def test_authorize_repeated_scope_redirects_invalid_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await code_client(runtime)
    response = await client.get(code_url() + "&scope=write")
    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {
        "error": "invalid_request",
        "error_description": "The 'scope' parameter is repeated.",
        "state": "st-1",
        "iss": ISSUER,
    }


@pytest.mark.parametrize(
    "name",
    ["call_evil_example_now", "Your account is locked", 'x"y\\z', "\u00e9t\u00e9"],
    ids=["lowercase", "sentence", "forbidden-chars", "non-ascii"],
)
async def test_authorize_repeated_unknown_parameter_is_not_echoed_to_the_client(
    client: httpx.AsyncClient, runtime: Runtime, name: str
) -> None:
    """A name the attacker chose never reaches the client's redirect URI (phishing text, or a 500)."""
    await code_client(runtime)
    response = await client.get(
        code_url() + "&" + urlencode([(name, "1"), (name, "2")])
    )
    assert response.status_code == 302, response.text
    assert query_of(response.headers["location"]) == {
        "error": "invalid_request",
        "error_description": "A parameter is repeated.",
        "state": "st-1",
        "iss": ISSUER,
    }


async def test_authorize_public_client_without_pkce_redirects_invalid_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await code_client(runtime, is_public=True, grant_types=("authorization_code",))
    response = await client.get(
        authorize_url(response_type="code", client_id="photos", state="s")
    )
    assert query_of(response.headers["location"]) == {
        "error": "invalid_request",
        "error_description": "PKCE is required: send code_challenge (S256).",
        "state": "s",
        "iss": ISSUER,
    }


async def test_authorize_sends_no_cors_headers_even_with_cors_configured(
    db_url: str, database: AsyncEngine
) -> None:
    from oauth_service.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(db_url, cors_origins=["https://app.example"]))
    async with app.router.lifespan_context(app):
        await code_client(app.state.runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            response = await http.get(
                code_url(), headers={"Origin": "https://app.example"}
            )
            page = await http.get(
                response.headers["location"], headers={"Origin": "https://app.example"}
            )
            token = await http.post(
                "/oauth/token", data={}, headers={"Origin": "https://app.example"}
            )
    assert response.status_code == 302
    assert page.status_code == 200
    for answer in (response, page):
        assert not any(name.startswith("access-control-") for name in answer.headers)
    assert token.headers["access-control-allow-origin"] == "https://app.example"


# --- login -----------------------------------------------------------------------------------------------


async def test_authorize_without_session_redirects_to_login_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await code_client(runtime)
    response = await client.get(code_url())
    assert response.status_code == 302
    assert response.headers["location"].startswith("/oauth/login?request=")
    page = await client.get(response.headers["location"])
    assert page.status_code == 200
    assert_page_headers(page, TO_CLIENT)
    assert '<html lang="en">' in page.text
    assert 'name="viewport"' in page.text
    assert 'autocomplete="username"' in page.text
    assert 'autocomplete="current-password"' in page.text
    assert '<label for="email">' in page.text
    assert "Photo App" in page.text
    assert "http://" not in page.text.replace(ISSUER, "")  # no third-party resources


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "wrong password"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
async def test_login_with_bad_credentials_shows_generic_message(
    client: httpx.AsyncClient, runtime: Runtime, email: str, password: str
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    start = await client.get(code_url())
    response = await submit_login(client, start.headers["location"], email, password)
    assert response.status_code == 400
    assert "Invalid email or password." in response.text
    assert "set-cookie" not in response.headers
    assert_page_headers(response, TO_CLIENT)


async def test_login_with_bad_csrf_token_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    start = await client.get(code_url())
    page = await client.get(start.headers["location"])
    form = {
        "request": hidden(page.text, "request"),
        "csrf_token": "forged",
        "email": EMAIL,
        "password": PASSWORD,
    }
    response = await client.post("/oauth/login", data=form)
    assert response.status_code == 400
    assert "The form expired." in response.text
    assert "set-cookie" not in response.headers


async def test_login_page_with_unknown_request_is_400_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/oauth/login?request=nope")
    assert response.status_code == 400
    assert "unknown or expired" in response.text
    assert_page_headers(response)


async def test_login_success_sets_signed_httponly_cookie_and_303s_to_consent(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    start = await client.get(code_url())
    response = await submit_login(
        client, start.headers["location"], "Alice@Example.com", PASSWORD
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/oauth/consent?request=")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("oauth_session=")
    for attribute in ("HttpOnly", "Path=/oauth", "SameSite=lax"):
        assert attribute in cookie
    assert "Secure" not in cookie
    raw_id = cookie.split("=", 1)[1].split(";", 1)[0].rsplit(".", 1)[0]
    async with database.connect() as conn:
        stored = (
            (await conn.execute(text("SELECT id_hash FROM login_sessions")))
            .scalars()
            .all()
        )
    assert stored == [token_hash(raw_id)]


async def test_login_cookie_is_secure_when_configured(
    db_url: str, database: AsyncEngine
) -> None:
    from oauth_service.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(db_url, cookie_secure=True))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await make_user(runtime, email=EMAIL, password=PASSWORD)
        await code_client(runtime)
        transport = httpx.ASGITransport(app=app)
        # Secure cookies (the login form's browser id) only travel over https.
        https = ISSUER.replace("http://", "https://")
        async with httpx.AsyncClient(transport=transport, base_url=https) as http:
            start = await http.get(code_url())
            response = await submit_login(
                http, start.headers["location"], EMAIL, PASSWORD
            )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_tampered_session_cookie_is_ignored(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    start = await client.get(code_url())
    await submit_login(client, start.headers["location"], EMAIL, PASSWORD)
    value = client.cookies["oauth_session"]
    client.cookies.clear()
    client.cookies.set(
        "oauth_session", value[:-2] + "AA", domain="oauth.test", path="/oauth"
    )
    response = await client.get(code_url())
    assert response.headers["location"].startswith("/oauth/login?")


# --- consent ---------------------------------------------------------------------------------------------


async def test_consent_page_lists_client_and_scope_descriptions(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    start = await client.get(code_url(scope="read write"))
    login = await submit_login(client, start.headers["location"], EMAIL, PASSWORD)
    page = await client.get(login.headers["location"])
    assert page.status_code == 200
    assert_page_headers(page, TO_CLIENT)
    assert "Photo App" in page.text
    assert "Read your data" in page.text
    assert "Create, change and delete your data" in page.text
    assert EMAIL in page.text


async def test_consent_approve_redirects_303_with_code_state_and_iss(
    client: httpx.AsyncClient, runtime: Runtime, database: AsyncEngine
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    response = await authorize_through_pages(
        client, code_url(), email=EMAIL, password=PASSWORD
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    params = query_of(location)
    assert set(params) == {"code", "state", "iss"}
    assert (params["state"], params["iss"]) == ("st-1", ISSUER)
    assert len(params["code"]) >= 43  # 256 bits
    async with database.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT code_hash, scope, redirect_uri FROM authorization_codes")
            )
        ).all()
        pending = await conn.scalar(text("SELECT count(*) FROM authorization_requests"))
    assert [tuple(r) for r in rows] == [(token_hash(params["code"]), "read", CALLBACK)]
    assert pending == 0


async def test_consent_deny_redirects_303_with_access_denied(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    response = await authorize_through_pages(
        client, code_url(), email=EMAIL, password=PASSWORD, decision="deny"
    )
    assert response.status_code == 303
    assert query_of(response.headers["location"]) == {
        "error": "access_denied",
        "error_description": "The resource owner denied the request.",
        "state": "st-1",
        "iss": ISSUER,
    }


async def test_consent_with_bad_csrf_token_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    start = await client.get(code_url())
    login = await submit_login(client, start.headers["location"], EMAIL, PASSWORD)
    page = await client.get(login.headers["location"])
    form = {
        "request": hidden(page.text, "request"),
        "csrf_token": "x",
        "decision": "approve",
    }
    response = await client.post("/oauth/consent", data=form)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_remembered_consent_skips_pages_on_second_authorize(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    await authorize_through_pages(client, code_url(), email=EMAIL, password=PASSWORD)
    response = await client.get(code_url(state="again"))
    assert response.status_code == 302
    params = query_of(response.headers["location"])
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "again"


async def test_wider_scope_than_remembered_asks_consent_again(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    await authorize_through_pages(client, code_url(), email=EMAIL, password=PASSWORD)
    response = await client.get(code_url(scope="read write"))
    assert response.headers["location"].startswith("/oauth/consent?request=")


async def test_prompt_consent_shows_consent_although_remembered(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    await authorize_through_pages(client, code_url(), email=EMAIL, password=PASSWORD)
    response = await client.get(code_url(prompt="consent"))
    assert response.headers["location"].startswith("/oauth/consent?request=")
    final = await submit_consent(client, response.headers["location"])
    assert final.status_code == 303
    assert "code" in query_of(final.headers["location"])


async def test_prompt_login_forces_login_then_continues(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    await authorize_through_pages(client, code_url(), email=EMAIL, password=PASSWORD)
    response = await client.get(code_url(prompt="login"))
    assert response.headers["location"].startswith("/oauth/login?request=")
    login = await submit_login(client, response.headers["location"], EMAIL, PASSWORD)
    final = await client.get(login.headers["location"])
    assert final.status_code == 302
    assert "code" in query_of(final.headers["location"])


async def test_prompt_none_without_session_redirects_login_required(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await code_client(runtime)
    response = await client.get(code_url(prompt="none"))
    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {
        "error": "login_required",
        "error_description": "The user is not signed in.",
        "state": "st-1",
        "iss": ISSUER,
    }


async def test_prompt_none_without_consent_redirects_consent_required(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    await authorize_through_pages(client, code_url(), email=EMAIL, password=PASSWORD)
    response = await client.get(code_url(prompt="none", scope="read write"))
    assert query_of(response.headers["location"])["error"] == "consent_required"


async def test_prompt_none_with_session_and_consent_returns_code(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    await authorize_through_pages(client, code_url(), email=EMAIL, password=PASSWORD)
    response = await client.get(code_url(prompt="none"))
    assert "code" in query_of(response.headers["location"])


async def test_first_party_client_skips_consent(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime, is_first_party=True)
    start = await client.get(code_url())
    login = await submit_login(client, start.headers["location"], EMAIL, PASSWORD)
    response = await client.get(login.headers["location"])
    assert response.status_code == 302
    assert response.headers["location"].startswith(CALLBACK + "?code=")


async def test_admin_scope_for_non_admin_redirects_invalid_scope(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(runtime)
    start = await client.get(code_url(scope="admin"))
    login = await submit_login(client, start.headers["location"], EMAIL, PASSWORD)
    response = await client.get(login.headers["location"])
    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {
        "error": "invalid_scope",
        "error_description": "The admin scope is reserved for administrators.",
        "state": "st-1",
        "iss": ISSUER,
    }


async def test_admin_scope_for_admin_is_granted(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD, is_admin=True)
    await code_client(runtime)
    response = await authorize_through_pages(
        client, code_url(scope="admin"), email=EMAIL, password=PASSWORD
    )
    assert "code" in query_of(response.headers["location"])


async def test_loopback_redirect_uri_with_other_port_is_used(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await code_client(
        runtime, redirect_uris=("http://127.0.0.1/callback",), is_first_party=True
    )
    url = code_url(redirect_uri="http://127.0.0.1:61234/callback")
    response = await authorize_through_pages(
        client, url, email=EMAIL, password=PASSWORD
    )
    assert response.headers["location"].startswith(
        "http://127.0.0.1:61234/callback?code="
    )
