"""Registration rules: redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7), grant types, scopes, emails, passwords."""

import pytest

from oauth_service.oauth.registration import (
    RegistrationError,
    check_client_id,
    check_grant_types,
    check_name,
    check_password,
    check_redirect_uri,
    check_redirect_uris,
    check_scope_name,
    normalize_email,
)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb",
        "https://app.example.com:8443/cb?x=1",
        "http://127.0.0.1:8765/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:9000/cb",
        "http://localhost:3000/cb",
        "com.example.app:/oauth2redirect",
        "com.example.app://callback",
    ],
)
def test_redirect_uri_allowed_forms_pass(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://app.example.com/cb#frag", "must not contain a fragment"),
        ("/relative/cb", "must be absolute"),
        ("https:///cb", "must be absolute"),
        ("https://user:pw@app.example.com/cb", "without userinfo"),
        ("http://app.example.com/cb", "must use https"),
        ("http://127.0.0.1.evil.com/cb", "must use https"),
        ("http://127.0.0.1:99999/cb", "invalid port"),
        ("myapp:/cb", "reverse-DNS private-use scheme"),
        ("javascript:alert(1)", "reverse-DNS private-use scheme"),
        ("", "empty or contains whitespace"),
        ("https://a.example/c b", "empty or contains whitespace"),
        ("http://[::1/cb", "not a valid URI"),
    ],
    ids=[
        "fragment",
        "relative",
        "no-host",
        "userinfo",
        "http-remote",
        "loopback-lookalike",
        "bad-port",
        "custom-scheme",
        "javascript",
        "empty",
        "space",
        "unclosed-ipv6",
    ],
)
def test_redirect_uri_bad_forms_raise(uri: str, message: str) -> None:
    with pytest.raises(RegistrationError, match=message):
        check_redirect_uri(uri)


def test_redirect_uris_deduplicated_in_order() -> None:
    uris = ["https://b.example/cb", "https://a.example/cb", "https://b.example/cb"]
    assert check_redirect_uris(uris, frozenset({"authorization_code"})) == [
        "https://b.example/cb",
        "https://a.example/cb",
    ]


@pytest.mark.parametrize("grant", ["authorization_code", "implicit"])
def test_redirect_grant_without_uri_raises(grant: str) -> None:
    with pytest.raises(
        RegistrationError, match=f"grant type '{grant}' needs at least one"
    ):
        check_redirect_uris([], frozenset({grant}))


@pytest.mark.parametrize(
    ("grants", "public", "message"),
    [
        ((), False, "at least one grant type"),
        (("device_code",), False, "unknown grant type 'device_code'"),
        (("client_credentials",), True, "public client cannot use client_credentials"),
        (("client_credentials", "refresh_token"), False, "refresh_token needs"),
    ],
    ids=["none", "unknown", "public-client-credentials", "lonely-refresh"],
)
def test_grant_types_invalid_raise(
    grants: tuple[str, ...], public: bool, message: str
) -> None:
    with pytest.raises(RegistrationError, match=message):
        check_grant_types(grants, is_public=public)


def test_grant_types_valid_returns_set() -> None:
    assert check_grant_types(
        ["password", "refresh_token", "password"], is_public=False
    ) == frozenset({"password", "refresh_token"})


@pytest.mark.parametrize("client_id", ["has space", "colon:id", "", "x" * 256])
def test_client_id_bad_characters_raise(client_id: str) -> None:
    with pytest.raises(RegistrationError, match="client_id"):
        check_client_id(client_id)


@pytest.mark.parametrize(
    "client_id",
    ["3f1c9a4e-8f64-4c1e-9a59-2d7f0e6b1a20", "3f1c9a4e8f644c1e9a592d7f0e6b1a20"],
    ids=["hyphenated", "hex"],
)
def test_client_id_shaped_like_a_user_id_raises(client_id: str) -> None:
    with pytest.raises(RegistrationError, match="must not be a UUID"):
        check_client_id(client_id)


@pytest.mark.parametrize("name", ["", "   ", "tab\tname", "x" * 256])
def test_client_name_invalid_raises(name: str) -> None:
    with pytest.raises(RegistrationError, match="client name must be"):
        check_name(name)


@pytest.mark.parametrize("scope", ['quo"te', "back\\slash", "sp ace", "ünï", "x" * 129])
def test_scope_name_invalid_raises(scope: str) -> None:
    with pytest.raises(RegistrationError, match="not a valid scope token"):
        check_scope_name(scope)


def test_email_normalized_lowercase_and_stripped() -> None:
    assert normalize_email("  Alice@Example.COM ") == "alice@example.com"


@pytest.mark.parametrize(
    "email", ["no-at-sign", "a@b", "two@@example.com", "sp ace@x.io"]
)
def test_email_invalid_raises(email: str) -> None:
    with pytest.raises(RegistrationError, match="invalid email address"):
        normalize_email(email)


def test_password_too_short_raises() -> None:
    with pytest.raises(RegistrationError, match="at least 8 characters"):
        check_password("short")


def test_password_too_long_raises() -> None:
    with pytest.raises(RegistrationError, match="at most 1024 characters"):
        check_password("x" * 1025)
