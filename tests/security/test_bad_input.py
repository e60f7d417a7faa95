"""Malformed input never reaches a 500 (RFC 6749 §3.1, §3.2, §5.2; §4.1.2.1 for the authorization endpoint).

Oversized bodies, 60 KB parameters, invalid UTF-8, NUL bytes, JSON or other media types on form endpoints and
repeated parameters each get a 400 (413 for size) with an RFC-shaped JSON body on the token, revocation and
introspection endpoints, and an HTML 400 page on the authorization endpoint before its redirect_uri is trusted.
"""

import httpx
import pytest

from oauth_service.runtime import Runtime
from tests.authorization_helpers import CALLBACK
from tests.bearer import access_token, bearer
from tests.factories import make_client, make_user

FORM = "application/x-www-form-urlencoded"
ENDPOINTS = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"]


def _invalid(description: str) -> dict[str, str]:
    return {"error": "invalid_request", "error_description": description}


NUL = _invalid("The request contains a NUL character.")
NOT_UTF8 = _invalid("The request body is not valid UTF-8 form data.")
NOT_FORM = _invalid(f"The content type must be {FORM}.")

BAD_BODIES: list[tuple[str, bytes, str | None, dict[str, str]]] = [
    ("nul-in-value", b"grant_type=password&token=a%00&client_id=app", FORM, NUL),
    ("nul-in-name", b"grant_type=password&tok%00en=a&client_id=app", FORM, NUL),
    ("raw-invalid-utf8", b"grant_type=\xff\xfe&token=a", FORM, NOT_UTF8),
    ("encoded-invalid-utf8", b"grant_type=%FF%FE&token=a", FORM, NOT_UTF8),
    (
        "json-body",
        b'{"grant_type": "password", "token": "a"}',
        "application/json",
        NOT_FORM,
    ),
    ("no-content-type", b"grant_type=password&token=a", None, NOT_FORM),
    ("text-plain", b"grant_type=password&token=a", "text/plain", NOT_FORM),
    ("multipart", b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", NOT_FORM),
    (
        "latin1-charset",
        b"grant_type=password&token=a",
        f"{FORM}; charset=latin1",
        _invalid("The request body must be UTF-8."),
    ),
    (
        "repeated-parameter",
        b"grant_type=password&grant_type=password&token=a&token=a",
        FORM,
        _invalid("Parameter 'grant_type' is repeated."),
    ),
    # A name this server does not read is never echoed, however tame it looks.
    (
        "repeated-unknown-parameter",
        b"grant_type=password&call_evil_example_now=1&call_evil_example_now=2",
        FORM,
        _invalid("Parameter is repeated."),
    ),
]


def _assert_json_error(
    response: httpx.Response, status: int, body: dict[str, str]
) -> None:
    assert response.status_code == status, response.text
    assert response.json() == body
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_form_endpoint_with_malformed_body_is_invalid_request(
    client: httpx.AsyncClient,
    endpoint: str,
    body: bytes,
    content_type: str | None,
    expected: dict[str, str],
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(endpoint, content=body, headers=headers)
    _assert_json_error(response, 400, expected)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_form_endpoint_with_body_over_limit_is_413(
    client: httpx.AsyncClient, endpoint: str
) -> None:
    body = b"token=" + b"a" * 100_000
    response = await client.post(endpoint, content=body, headers={"content-type": FORM})
    _assert_json_error(response, 413, _invalid("The request body is too large."))


@pytest.mark.parametrize(
    ("name", "form", "expected"),
    [
        (
            "client-id",
            {"grant_type": "client_credentials", "client_id": "c" * 60_000},
            {
                "error": "invalid_client",
                "error_description": "Client authentication failed.",
            },
        ),
        (
            "email",
            {
                "grant_type": "password",
                "client_id": "pub",
                "email": "e" * 60_000,
                "password": "x",
            },
            {
                "error": "invalid_grant",
                "error_description": "Invalid email or password.",
            },
        ),
        (
            "scope",
            {
                "grant_type": "password",
                "client_id": "pub",
                "email": "a@b.c",
                "password": "x",
                "scope": "s" * 60_000,
            },
            {
                "error": "invalid_grant",
                "error_description": "Invalid email or password.",
            },
        ),
        (
            "refresh-token",
            {
                "grant_type": "refresh_token",
                "client_id": "pub",
                "refresh_token": "r" * 60_000,
            },
            {
                "error": "invalid_grant",
                "error_description": "The refresh token is invalid, expired or revoked.",
            },
        ),
    ],
)
async def test_token_with_60kb_parameter_is_a_clean_error(
    client: httpx.AsyncClient,
    runtime: Runtime,
    name: str,
    form: dict[str, str],
    expected: dict[str, str],
) -> None:
    await make_client(
        runtime,
        client_id="pub",
        is_public=True,
        grant_types=("password", "refresh_token"),
    )
    _assert_json_error(await client.post("/oauth/token", data=form), 400, expected)


AUTHORIZE_CASES = [
    ("nul-client-id", "response_type=code&client_id=a%00b&redirect_uri=x"),
    (
        "nul-redirect-uri",
        f"response_type=code&client_id=web&redirect_uri={CALLBACK}%00",
    ),
    ("invalid-utf8", "response_type=code&client_id=%FF%FE&redirect_uri=x"),
    (
        "repeated",
        f"response_type=code&client_id=web&client_id=web&redirect_uri={CALLBACK}",
    ),
    ("huge-client-id", "response_type=code&client_id=" + "a" * 60_000),
    (
        "unregistered-redirect",
        "response_type=code&client_id=web&redirect_uri=https://evil.example/",
    ),
]


@pytest.mark.parametrize(
    "query",
    [case[1] for case in AUTHORIZE_CASES],
    ids=[case[0] for case in AUTHORIZE_CASES],
)
async def test_authorize_with_malformed_query_renders_html_400_without_redirect(
    client: httpx.AsyncClient, runtime: Runtime, query: str
) -> None:
    await make_client(
        runtime,
        client_id="web",
        is_public=True,
        grant_types=("authorization_code",),
        redirect_uris=(CALLBACK,),
    )
    response = await client.get(f"/oauth/authorize?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "location" not in response.headers
    assert "<script" not in response.text.split("</head>")[-1].lower()


async def test_authorize_error_page_escapes_reflected_input(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_client(
        runtime,
        client_id="web",
        is_public=True,
        grant_types=("authorization_code",),
        redirect_uris=(CALLBACK,),
    )
    payload = "<script>alert(1)</script>"
    response = await client.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": payload, "redirect_uri": payload},
    )
    assert response.status_code == 400
    assert payload not in response.text


async def test_admin_json_with_nul_is_400_not_500(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin, _ = await make_user(runtime, email="root@example.com", is_admin=True)
    headers = bearer(access_token(runtime, subject=admin.id, scope="admin"))
    response = await client.post(
        "/admin/users",
        json={"email": "a\u0000b@example.com", "password": "x" * 12},
        headers=headers,
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        # urlsplit drops CR/LF silently: matched, it would be echoed into the Location header.
        "http://127.0.0.1:5000/cb%0D%0AX-Evil:%201",
        # An unclosed IPv6 bracket made urlsplit raise (a 500) while matching the loopback registration.
        "http://%5B::1/cb",
    ],
    ids=["newline", "unclosed-ipv6"],
)
async def test_authorize_malformed_loopback_redirect_renders_400_not_echoed(
    client: httpx.AsyncClient, runtime: Runtime, redirect_uri: str
) -> None:
    await make_client(
        runtime,
        client_id="native",
        is_public=True,
        grant_types=("authorization_code",),
        redirect_uris=("http://127.0.0.1/cb",),
    )
    query = f"response_type=code&client_id=native&redirect_uri={redirect_uri}"
    response = await client.get(f"/oauth/authorize?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "location" not in response.headers
    assert "x-evil" not in response.headers
