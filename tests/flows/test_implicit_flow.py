"""The implicit grant end to end (RFC 6749 §4.2): only for clients allowed it, token in the fragment, no refresh."""

from urllib.parse import urlsplit

import httpx

from oauth_service.app import create_app
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    authorize_through_pages,
    authorize_url,
    fragment_of,
)
from tests.conftest import ISSUER, make_settings
from tests.factories import make_client, make_user

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
CALLBACK = "https://spa.example/cb"


async def _setup(runtime: Runtime) -> str:
    user, _ = await make_user(runtime, email=EMAIL, password=PASSWORD)
    await make_client(
        runtime,
        client_id="legacy-spa",
        name="Legacy SPA",
        is_public=True,
        grant_types=("implicit",),
        redirect_uris=(CALLBACK,),
        scopes=("read",),
    )
    return user.id


def _url() -> str:
    return authorize_url(
        response_type="token",
        client_id="legacy-spa",
        redirect_uri=CALLBACK,
        scope="read",
        state="s-9",
    )


async def test_implicit_returns_access_token_in_fragment_without_refresh(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user_id = await _setup(runtime)
    response = await authorize_through_pages(
        client, _url(), email=EMAIL, password=PASSWORD
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "#")
    assert urlsplit(location).query == ""
    params = fragment_of(location)
    assert set(params) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "state",
        "iss",
    }
    assert (params["token_type"], params["expires_in"], params["scope"]) == (
        "Bearer",
        "600",
        "read",
    )
    assert (params["state"], params["iss"]) == ("s-9", ISSUER)
    claims = runtime.keys.verify(
        params["access_token"],
        issuer=ISSUER,
        audience=runtime.settings.resource_audience,
    )
    assert (claims["sub"], claims["client_id"]) == (user_id, "legacy-spa")


async def test_implicit_remembered_consent_answers_directly(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    await authorize_through_pages(client, _url(), email=EMAIL, password=PASSWORD)
    response = await client.get(_url())
    assert response.status_code == 302
    assert "access_token" in fragment_of(response.headers["location"])


async def test_implicit_deny_sends_access_denied_in_fragment(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _setup(runtime)
    response = await authorize_through_pages(
        client, _url(), email=EMAIL, password=PASSWORD, decision="deny"
    )
    assert fragment_of(response.headers["location"]) == {
        "error": "access_denied",
        "error_description": "The resource owner denied the request.",
        "state": "s-9",
        "iss": ISSUER,
    }


async def test_implicit_disabled_on_server_is_unsupported_response_type(
    db_url: str, database: object
) -> None:
    settings = make_settings(
        db_url, enabled_grants=["authorization_code", "refresh_token"]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await _setup(app.state.runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            response = await http.get(_url())
    assert response.status_code == 302
    assert fragment_of(response.headers["location"]) == {
        "error": "unsupported_response_type",
        "error_description": "Unsupported response_type.",
        "state": "s-9",
        "iss": ISSUER,
    }
