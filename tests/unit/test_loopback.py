"""The loopback listener of ``perform authorization-code`` and the report it ends with, without a server.

The browser-driven flow is in ``tests/browser/test_perform.py``; here the listener's edges: which URIs it can
serve, that stray requests do not end the wait, that repeated parameters and second redirects are refused.
"""

import base64
import json
from collections.abc import Mapping

import httpx
import pytest

from oauth_service.cli.loopback import (
    LoopbackAddress,
    LoopbackListener,
    RedirectUriError,
    parse_redirect_uri,
)
from oauth_service.cli.token_report import format_token_response, unverified_claims


def _accept_state_ok(params: Mapping[str, str]) -> str | None:
    return None if params.get("state") == "ok" else "bad state"


@pytest.mark.parametrize(
    ("uri", "port", "address"),
    [
        (
            "http://127.0.0.1/callback",
            None,
            LoopbackAddress("127.0.0.1", 0, "/callback"),
        ),
        (
            "http://127.0.0.1/callback",
            8765,
            LoopbackAddress("127.0.0.1", 8765, "/callback"),
        ),
        (
            "http://127.0.0.1:8765/cb?app=1",
            None,
            LoopbackAddress("127.0.0.1", 8765, "/cb", "app=1"),
        ),
        ("http://[::1]:9000", 9000, LoopbackAddress("[::1]", 9000, "/")),
    ],
    ids=["free_port", "port_option", "port_and_query", "ipv6"],
)
def test_parse_redirect_uri_loopback_literals_give_address(
    uri: str, port: int | None, address: LoopbackAddress
) -> None:
    assert parse_redirect_uri(uri, port) == address


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1/callback",
        "http://localhost/callback",
        "http://user@127.0.0.1/callback",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1/callback#frag",
    ],
    ids=["https", "localhost", "userinfo", "bad_port", "fragment"],
)
def test_parse_redirect_uri_other_uris_are_refused(uri: str) -> None:
    with pytest.raises(
        RedirectUriError, match=r"^--redirect-uri must be http://127\.0\.0\.1"
    ):
        parse_redirect_uri(uri, None)


def test_listener_ignores_other_paths_and_answers_first_redirect_only() -> None:
    address = LoopbackAddress("127.0.0.1", 0, "/callback")
    with (
        LoopbackListener(address, _accept_state_ok) as listener,
        httpx.Client(timeout=5) as http,
    ):
        base = listener.redirect_uri.removesuffix("/callback")
        assert base.startswith("http://127.0.0.1:")
        assert http.get(f"{base}/favicon.ico").status_code == 404
        assert listener.wait(0.1) is None
        first = http.get(f"{listener.redirect_uri}?code=c1&state=ok")
        again = http.get(f"{listener.redirect_uri}?code=c2&state=ok")
        redirect = listener.wait(1)
    assert (first.status_code, again.status_code) == (200, 409)
    assert "You can close this tab" in first.text
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert redirect is not None
    assert (dict(redirect.params), redirect.problem) == (
        {"code": "c1", "state": "ok"},
        None,
    )


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("code=c&state=ok&state=ok", "the redirect repeats state"),
        ("code=c&state=<script>", "bad state"),
    ],
    ids=["repeated", "refused"],
)
def test_listener_refused_redirect_says_why_escaped(query: str, problem: str) -> None:
    address = LoopbackAddress("127.0.0.1", 0, "/callback")
    with (
        LoopbackListener(address, _accept_state_ok) as listener,
        httpx.Client(timeout=5) as http,
    ):
        response = http.get(f"{listener.redirect_uri}?{query}")
        redirect = listener.wait(1)
    assert response.status_code == 400
    assert f"<p>{problem}. You can close this tab.</p>" in response.text
    assert "<script>" not in response.text
    assert redirect is not None
    assert redirect.problem == problem


def _jws(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_token_report_shows_fields_then_claims_with_times() -> None:
    token = _jws({"sub": "svc", "exp": 0, "scope": "read"})
    report = format_token_response(
        {"access_token": token, "token_type": "Bearer", "expires_in": 600}
    )
    assert report.splitlines() == [
        f"access_token: {token}",
        "token_type:   Bearer",
        "expires_in:   600",
        "access token claims (decoded, not verified):",
        "  exp:   0 (1970-01-01T00:00:00Z)",
        "  scope: read",
        "  sub:   svc",
    ]


@pytest.mark.parametrize(
    "token",
    ["opaque-token", "a.!!!.c", "a.bnVsbA.c"],
    ids=["opaque", "not_base64", "not_object"],
)
def test_token_report_non_jwt_has_no_claims(token: str) -> None:
    assert unverified_claims(token) is None
    assert "claims" not in format_token_response({"access_token": token})
