"""The discovery document lists nothing that does not work (issue 18, "Done when").

Each test reads ``/.well-known/openid-configuration`` and exercises what it advertises, driven from the document
alone: every response type through the real pages, every scope granted, every listed claim delivered by the ID
token or UserInfo, the listed endpoints answering, every prompt value honoured, every client authentication
method accepted, and what the document says is unsupported refused as OIDC Core §6 asks.
"""

from typing import Any

import httpx
from jose import jwt

from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    fragment_of,
    new_pkce,
    query_of,
)
from tests.factories import basic_auth, make_client
from tests.rp.conftest import PASSWORD, EndUser, make_end_user

# What each response_type component puts in the authorization response (OAuth 2.0 Multiple Response Types §3).
RESPONSE_PARAMETER = {"code": "code", "token": "access_token", "id_token": "id_token"}


async def _metadata(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/.well-known/openid-configuration")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _path(url: str, issuer: str) -> str:
    assert url.startswith(issuer), url
    return url[len(issuer) :]


async def _client_for(
    runtime: Runtime,
    client_id: str,
    grants: set[str],
    scopes: list[str],
    *,
    public: bool,
) -> str | None:
    _, secret = await make_client(
        runtime,
        client_id=client_id,
        name=f"Discovery {client_id}",
        grant_types=sorted(grants),
        redirect_uris=(CALLBACK,),
        scopes=scopes,
        is_public=public,
    )
    return secret


async def _code_flow(
    http: httpx.AsyncClient,
    metadata: dict[str, Any],
    user: EndUser,
    *,
    client_id: str,
    scope: str,
    auth: dict[str, str] | None = None,
    form_auth: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Authorize through the pages with PKCE and a nonce, redeem the code; return the token response."""
    issuer = metadata["issuer"]
    verifier, challenge = new_pkce()
    response = await authorize_through_pages(
        http,
        authorize_url(
            response_type="code",
            client_id=client_id,
            redirect_uri=CALLBACK,
            scope=scope,
            state="s",
            nonce="n-0S6_WzA2Mj",
            code_challenge=challenge,
            code_challenge_method="S256",
        ),
        email=user.email,
        password=PASSWORD,
    )
    # The consent form's POST answers 303 See Other to the client.
    assert response.status_code == 303, response.text
    params = query_of(response.headers["location"])
    assert params.keys() == {"code", "state", "iss"}, params
    token = await http.post(
        _path(metadata["token_endpoint"], issuer),
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        }
        | (form_auth or {}),
        headers=auth or {},
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


async def test_every_response_type_listed_works_at_the_authorization_endpoint(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    metadata = await _metadata(client)
    user = await make_end_user(runtime)
    assert metadata["response_types_supported"], metadata
    for index, response_type in enumerate(metadata["response_types_supported"]):
        parts = set(response_type.split())
        grants = ({"authorization_code"} if "code" in parts else set()) | (
            {"implicit"} if parts - {"code"} else set()
        )
        client_id = f"rt-{index}"
        await _client_for(
            runtime, client_id, grants, ["openid", "profile"], public=True
        )
        _, challenge = new_pkce()
        response = await authorize_through_pages(
            client,
            authorize_url(
                response_type=response_type,
                client_id=client_id,
                redirect_uri=CALLBACK,
                scope="openid profile",
                state=f"state-{index}",
                nonce=f"nonce-{index}",
                code_challenge=challenge,
                code_challenge_method="S256",
            ),
            email=user.email,
            password=PASSWORD,
        )
        assert response.status_code == 303, (response_type, response.text)
        location = response.headers["location"]
        assert location.startswith(CALLBACK), (response_type, location)
        params = (
            query_of(location) if response_type == "code" else fragment_of(location)
        )
        assert "error" not in params, (response_type, params)
        assert params["state"] == f"state-{index}"
        for part in parts:
            assert RESPONSE_PARAMETER[part] in params, (response_type, params)
        if "id_token" in params:
            claims = jwt.get_unverified_claims(params["id_token"])
            assert claims["nonce"] == f"nonce-{index}"
            assert claims["aud"] == client_id


async def test_every_scope_is_granted_and_every_claim_is_delivered(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """Every scope listed can be granted together; every claim listed reaches the ID token or UserInfo.

    The user is an administrator: ``admin`` is listed, and granted to administrators only.
    """
    metadata = await _metadata(client)
    user = await make_end_user(runtime, is_admin=True)
    scopes = metadata["scopes_supported"]
    secret = await _client_for(
        runtime,
        "all-scopes",
        {"authorization_code", "refresh_token"},
        scopes,
        public=False,
    )
    assert secret is not None
    token = await _code_flow(
        client,
        metadata,
        user,
        client_id="all-scopes",
        scope=" ".join(scopes),
        auth=basic_auth("all-scopes", secret),
    )
    assert token["scope"].split() == sorted(scopes)

    jwks = (await client.get(_path(metadata["jwks_uri"], metadata["issuer"]))).json()
    header = jwt.get_unverified_header(token["id_token"])
    assert header["alg"] in metadata["id_token_signing_alg_values_supported"]
    id_claims = jwt.decode(
        token["id_token"],
        jwks,
        algorithms=metadata["id_token_signing_alg_values_supported"],
        audience="all-scopes",
        issuer=metadata["issuer"],
        access_token=token["access_token"],
    )
    userinfo = await client.get(
        _path(metadata["userinfo_endpoint"], metadata["issuer"]),
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == id_claims["sub"] == user.subject
    delivered = set(id_claims) | set(userinfo.json())
    assert set(metadata["claims_supported"]) - delivered == set()
    assert set(metadata["subject_types_supported"]) == {"public"}


async def test_listed_endpoints_answer(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    metadata = await _metadata(client)
    issuer = metadata["issuer"]
    jwks = await client.get(_path(metadata["jwks_uri"], issuer))
    assert jwks.status_code == 200
    assert jwks.json()["keys"], jwks.text
    # UserInfo refuses a request without a token as RFC 6750 §3 says, on both methods it takes.
    for method in ("GET", "POST"):
        bare = await client.request(
            method, _path(metadata["userinfo_endpoint"], issuer)
        )
        assert bare.status_code == 401, bare.text
        assert bare.headers["www-authenticate"].startswith("Bearer")
    # The end-session endpoint answers a request that names no client with a page, on GET and POST.
    for method in ("GET", "POST"):
        logout = await client.request(
            method, _path(metadata["end_session_endpoint"], issuer)
        )
        assert logout.status_code == 200, (method, logout.text)
        assert logout.headers["content-type"].startswith("text/html")


async def test_every_client_authentication_method_listed_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    metadata = await _metadata(client)
    user = await make_end_user(runtime)
    for method in metadata["token_endpoint_auth_methods_supported"]:
        client_id = f"auth-{method}".replace("_", "-")
        secret = await _client_for(
            runtime,
            client_id,
            {"authorization_code"},
            ["openid"],
            public=method == "none",
        )
        auth, form = None, {"client_id": client_id}
        if method == "client_secret_basic":
            assert secret is not None
            auth, form = basic_auth(client_id, secret), {}
        elif method == "client_secret_post":
            form = {"client_id": client_id, "client_secret": str(secret)}
        token = await _code_flow(
            client,
            metadata,
            user,
            client_id=client_id,
            scope="openid",
            auth=auth,
            form_auth=form,
        )
        assert "id_token" in token, (method, token)


async def test_every_code_challenge_method_and_response_mode_listed_works(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """RFC 7636 §4.2 methods at the token endpoint; OAuth 2.0 Multiple Response Types §2.1 modes for ``code``."""
    metadata = await _metadata(client)
    user = await make_end_user(runtime)
    await _client_for(runtime, "modes", {"authorization_code"}, ["openid"], public=True)
    cases = [("S256", "query")] + [
        (method, mode)
        for method in metadata["code_challenge_methods_supported"]
        for mode in metadata["response_modes_supported"]
    ]
    for index, (method, mode) in enumerate(cases):
        verifier, challenge = new_pkce()
        if method == "plain":
            challenge = verifier
        response = await authorize_through_pages(
            client,
            authorize_url(
                response_type="code",
                response_mode=mode,
                client_id="modes",
                redirect_uri=CALLBACK,
                scope="openid",
                state=f"m-{index}",
                nonce=f"n-{index}",
                code_challenge=challenge,
                code_challenge_method=method,
            ),
            email=user.email,
            password=PASSWORD,
        )
        # The first request asks for consent (303 from the form), the later ones find it given (302).
        assert response.status_code == (303 if index == 0 else 302), (
            method,
            mode,
            response.text,
        )
        location = response.headers["location"]
        params = fragment_of(location) if mode == "fragment" else query_of(location)
        assert params.keys() == {"code", "state", "iss"}, (method, mode, location)
        token = await client.post(
            _path(metadata["token_endpoint"], metadata["issuer"]),
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": CALLBACK,
                "client_id": "modes",
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, (method, mode, token.text)
        nonce = jwt.get_unverified_claims(token.json()["id_token"])["nonce"]
        assert nonce == f"n-{index}"


async def test_every_prompt_value_listed_is_honoured(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """OIDC Core §3.1.2.1, with a signed-in user who has consented: ``none`` answers at once, ``login`` and
    ``select_account`` ask for the password again, ``consent`` asks for consent again."""
    metadata = await _metadata(client)
    user = await make_end_user(runtime)
    await _client_for(
        runtime, "prompts", {"authorization_code"}, ["openid"], public=True
    )
    _, challenge = new_pkce()
    request = {
        "response_type": "code",
        "client_id": "prompts",
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": "p",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    signed_out = await client.get(authorize_url(**request, prompt="none"))
    assert signed_out.status_code == 302, signed_out.text
    assert query_of(signed_out.headers["location"]) == {
        "error": "login_required",
        "error_description": "The user is not signed in.",
        "state": "p",
        "iss": metadata["issuer"],
    }
    consented = await authorize_through_pages(
        client, authorize_url(**request), email=user.email, password=PASSWORD
    )
    assert consented.status_code == 303, consented.text
    pages = {
        "login": "/oauth/login",
        "select_account": "/oauth/login",
        "consent": "/oauth/consent",
    }
    for prompt in metadata["prompt_values_supported"]:
        response = await client.get(authorize_url(**request, prompt=prompt))
        assert response.status_code == 302, (prompt, response.text)
        location = response.headers["location"]
        if prompt == "none":
            assert query_of(location).keys() == {"code", "state", "iss"}, location
        else:
            assert location.startswith(f"{pages[prompt]}?request="), (prompt, location)


async def test_what_is_listed_as_unsupported_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """``request``, ``request_uri`` and ``claims`` listed as unsupported: refused at the redirect URI with the
    OIDC Core §3.1.2.6 error for each, never silently ignored."""
    metadata = await _metadata(client)
    await _client_for(
        runtime, "unsupported", {"authorization_code"}, ["openid"], public=True
    )
    _, challenge = new_pkce()
    expected = {
        "request": (
            metadata["request_parameter_supported"],
            "request_not_supported",
            "eyJhbGciOiJub25lIn0.e30.",
        ),
        "request_uri": (
            metadata["request_uri_parameter_supported"],
            "request_uri_not_supported",
            "urn:example:request",
        ),
        "claims": (
            metadata["claims_parameter_supported"],
            "invalid_request",
            '{"userinfo": {"name": null}}',
        ),
    }
    for parameter, (supported, error, value) in expected.items():
        assert supported is False
        response = await client.get(
            authorize_url(
                response_type="code",
                client_id="unsupported",
                redirect_uri=CALLBACK,
                scope="openid",
                state="u",
                code_challenge=challenge,
                code_challenge_method="S256",
                **{parameter: value},
            )
        )
        assert response.status_code == 302, (parameter, response.text)
        assert query_of(response.headers["location"]) == {
            "error": error,
            "error_description": f"The {parameter} parameter is not supported.",
            "state": "u",
            "iss": metadata["issuer"],
        }
