"""Authorization request validation (RFC 6749 §4.1.1, §4.1.2.1, §4.2.1; RFC 8252 §7.3; RFC 9207) and the
next-step decision (login / consent / respond, ``prompt``)."""

from datetime import UTC, datetime, timedelta

import pytest

from oauth_service.oauth.authorization import (
    AuthorizationRequest,
    OpenIdPolicy,
    validate_authorization_request,
)
from oauth_service.oauth.consent import NextStep, next_step
from oauth_service.oauth.errors import ErrorRedirect, OAuthError
from oauth_service.oauth.models import Client, User
from tests.fakes import FakeClientStore

ISSUER = "https://as.example"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
CB = "https://app.example/cb"


def make_client(
    client_id: str = "web",
    *,
    is_public: bool = False,
    grant_types: frozenset[str] = frozenset({"authorization_code"}),
    redirect_uris: tuple[str, ...] = (CB,),
    scopes: frozenset[str] = frozenset({"read", "write", "admin"}),
    is_first_party: bool = False,
) -> Client:
    return Client(
        client_id=client_id,
        name="App",
        is_public=is_public,
        grant_types=grant_types,
        redirect_uris=redirect_uris,
        scopes=scopes,
        is_first_party=is_first_party,
    )


async def validate(
    params: list[tuple[str, str]],
    *clients: Client,
    allow_plain: bool = False,
    response_types: frozenset[str] = frozenset({"code", "token"}),
) -> AuthorizationRequest:
    return await validate_authorization_request(
        params,
        clients=FakeClientStore(clients or (make_client(),)),
        issuer=ISSUER,
        response_types=response_types,
        allow_plain_pkce=allow_plain,
        openid=OpenIdPolicy(read_hint=lambda _token: None, max_nonce_length=512),
    )


async def test_validate_code_request_returns_value_object() -> None:
    request = await validate(
        [
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CB),
            ("scope", "read"),
            ("state", "xyz"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
    )
    assert request == AuthorizationRequest(
        client_id="web",
        response_type="code",
        redirect_uri=CB,
        scope=frozenset({"read"}),
        issuer=ISSUER,
        state="xyz",
        redirect_uri_param=CB,
        code_challenge=CHALLENGE,
        code_challenge_method="S256",
    )
    assert AuthorizationRequest.from_params(request.to_params()) == request


async def test_validate_without_redirect_uri_uses_only_registered_one() -> None:
    request = await validate([("response_type", "code"), ("client_id", "web")])
    assert request.redirect_uri == CB
    assert request.redirect_uri_param is None


async def test_validate_without_scope_defaults_to_client_scopes_minus_admin() -> None:
    request = await validate([("response_type", "code"), ("client_id", "web")])
    assert request.scope == {"read", "write"}


@pytest.mark.parametrize(
    ("params", "error", "description"),
    [
        (
            [("response_type", "code")],
            "invalid_request",
            "Missing 'client_id' parameter.",
        ),
        ([("client_id", "nobody")], "invalid_client", "Unknown client."),
        (
            [("client_id", "web"), ("client_id", "web")],
            "invalid_request",
            "The 'client_id' parameter is repeated.",
        ),
        (
            [("client_id", "web"), ("redirect_uri", "https://evil.example/cb")],
            "invalid_request",
            "redirect_uri does not match a registered one.",
        ),
        (
            [("client_id", "web"), ("redirect_uri", CB + "/")],
            "invalid_request",
            "redirect_uri does not match a registered one.",
        ),
        (
            [("client_id", "web"), ("redirect_uri", CB), ("redirect_uri", CB)],
            "invalid_request",
            "The 'redirect_uri' parameter is repeated.",
        ),
        (
            [("client_id", "two"), ("response_type", "code")],
            "invalid_request",
            "redirect_uri is required: the client registered several.",
        ),
    ],
    ids=[
        "missing-client",
        "unknown-client",
        "repeated-client",
        "foreign-uri",
        "near-miss-uri",
        "repeated-uri",
        "several-uris",
    ],
)
async def test_validate_before_redirect_uri_is_trusted_never_redirects(
    params: list[tuple[str, str]], error: str, description: str
) -> None:
    two = make_client("two", redirect_uris=(CB, "https://app.example/other"))
    with pytest.raises(OAuthError) as caught:
        await validate(params, make_client(), two)
    assert caught.value.redirect is None
    assert caught.value.body() == {"error": error, "error_description": description}


@pytest.mark.parametrize(
    ("registered", "requested", "ok"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:53211/cb", True),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9/cb", True),
        ("http://[::1]/cb", "http://[::1]:4000/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:53211/other", False),
        ("http://127.0.0.1/cb", "http://localhost:53211/cb", False),
        ("http://localhost/cb", "http://localhost:53211/cb", False),
        ("http://127.0.0.1/cb", "https://127.0.0.1:53211/cb", False),
        ("http://127.0.0.1/cb", "http://user@127.0.0.1:1/cb", False),
    ],
    ids=[
        "v4-any-port",
        "v4-other-port",
        "v6-any-port",
        "path-differs",
        "hostname",
        "localhost-exact-only",
        "scheme",
        "userinfo",
    ],
)
async def test_validate_loopback_redirect_accepts_any_port(
    registered: str, requested: str, ok: bool
) -> None:
    client = make_client(redirect_uris=(registered,))
    params = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", requested),
    ]
    if ok:
        assert (await validate(params, client)).redirect_uri == requested
    else:
        with pytest.raises(OAuthError) as caught:
            await validate(params, client)
        assert caught.value.redirect is None


PUBLIC = make_client(
    "spa",
    is_public=True,
    grant_types=frozenset({"authorization_code"}),
    scopes=frozenset({"read"}),
)
IMPLICIT = make_client("imp", is_public=True, grant_types=frozenset({"implicit"}))


@pytest.mark.parametrize(
    ("params", "error", "description", "fragment"),
    [
        (
            [("client_id", "web")],
            "invalid_request",
            "Missing 'response_type' parameter.",
            False,
        ),
        (
            [("client_id", "web"), ("response_type", "bogus")],
            "unsupported_response_type",
            "Unsupported response_type.",
            False,
        ),
        (
            [("client_id", "web"), ("response_type", "token")],
            "unauthorized_client",
            "The client may not use this response_type.",
            True,
        ),
        (
            [("client_id", "imp"), ("response_type", "code")],
            "unauthorized_client",
            "The client may not use this response_type.",
            False,
        ),
        (
            [("client_id", "web"), ("response_type", "code"), ("scope", "read delete")],
            "invalid_scope",
            "The requested scope exceeds what the client may ask for.",
            False,
        ),
        (
            [("client_id", "web"), ("response_type", "code"), ("scope", 'read "x')],
            "invalid_scope",
            "The scope parameter is malformed.",
            False,
        ),
        (
            [("client_id", "spa"), ("response_type", "code")],
            "invalid_request",
            "PKCE is required: send code_challenge (S256).",
            False,
        ),
        (
            [
                ("client_id", "spa"),
                ("response_type", "code"),
                ("code_challenge", CHALLENGE),
            ],
            "invalid_request",
            "code_challenge_method is required; use S256.",
            False,
        ),
        (
            [
                ("client_id", "spa"),
                ("response_type", "code"),
                ("code_challenge", "x" * 43),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
            "Unsupported code_challenge_method; use S256.",
            False,
        ),
        (
            [
                ("client_id", "web"),
                ("response_type", "code"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
            "code_challenge_method without code_challenge.",
            False,
        ),
        (
            [
                ("client_id", "web"),
                ("response_type", "code"),
                ("prompt", "bogus"),
            ],
            "invalid_request",
            "Unsupported prompt value.",
            False,
        ),
        (
            [("client_id", "web"), ("response_type", "code"), ("prompt", "none login")],
            "invalid_request",
            "prompt=none cannot be combined with other values.",
            False,
        ),
        (
            [
                ("client_id", "web"),
                ("response_type", "code"),
                ("scope", "read"),
                ("scope", "read"),
            ],
            "invalid_request",
            "The 'scope' parameter is repeated.",
            False,
        ),
        (
            [
                ("client_id", "web"),
                ("response_type", "code"),
                ("lang", "1"),
                ("lang", "2"),
            ],
            "invalid_request",
            "A parameter is repeated.",  # not a name this endpoint reads: not echoed
            False,
        ),
        (
            [("client_id", "imp"), ("response_type", "token"), ("scope", "nope")],
            "invalid_scope",
            "The requested scope exceeds what the client may ask for.",
            True,
        ),
    ],
    ids=[
        "missing-response-type",
        "unsupported_response_type",
        "unauthorized_client-token",
        "unauthorized_client-code",
        "invalid_scope",
        "malformed-scope",
        "pkce-required",
        "pkce-no-method",
        "pkce-plain",
        "pkce-method-only",
        "bad-prompt",
        "prompt-none-combined",
        "repeated-scope",
        "repeated-other",
        "implicit-fragment",
    ],
)
async def test_validate_after_redirect_uri_is_trusted_redirects_error(
    params: list[tuple[str, str]], error: str, description: str, fragment: bool
) -> None:
    with pytest.raises(OAuthError) as caught:
        await validate([*params, ("state", "s1")], make_client(), PUBLIC, IMPLICIT)
    assert caught.value.body() == {"error": error, "error_description": description}
    assert caught.value.redirect == ErrorRedirect(CB, "s1", fragment, ISSUER)


async def test_validate_response_type_not_enabled_is_unsupported() -> None:
    with pytest.raises(OAuthError) as caught:
        await validate(
            [("client_id", "imp"), ("response_type", "token")],
            IMPLICIT,
            response_types=frozenset({"code"}),
        )
    assert caught.value.error == "unsupported_response_type"


async def test_validate_plain_pkce_when_enabled_is_accepted() -> None:
    request = await validate(
        [("client_id", "spa"), ("response_type", "code"), ("code_challenge", "p" * 43)],
        PUBLIC,
        allow_plain=True,
    )
    assert (request.code_challenge, request.code_challenge_method) == (
        "p" * 43,
        "plain",
    )


async def test_validate_implicit_ignores_pkce_and_keeps_prompt() -> None:
    request = await validate(
        [("client_id", "imp"), ("response_type", "token"), ("prompt", "login consent")],
        IMPLICIT,
    )
    assert request.uses_fragment
    assert request.code_challenge is None
    assert request.prompt == {"login", "consent"}


# --- next step --------------------------------------------------------------------------------------------

NOW = datetime(2030, 1, 1, tzinfo=UTC)
ALICE = User(id="u1", email="alice@example.com")
ADMIN = User(id="u2", email="root@example.com", is_admin=True)


def make_request(scope: str = "read", prompt: str = "") -> AuthorizationRequest:
    return AuthorizationRequest(
        client_id="web",
        response_type="code",
        redirect_uri=CB,
        scope=frozenset(scope.split()),
        issuer=ISSUER,
        state="s",
        prompt=frozenset(prompt.split()),
    )


def decide(
    request: AuthorizationRequest,
    *,
    user: User | None = ALICE,
    auth_time: datetime | None = NOW - timedelta(minutes=5),
    remembered: frozenset[str] | None = None,
    client: Client | None = None,
) -> NextStep:
    return next_step(
        request,
        client or make_client(),
        user=user,
        auth_time=auth_time,
        requested_at=NOW,
        remembered=remembered,
    )


def test_next_step_without_user_is_login() -> None:
    assert decide(make_request(), user=None, auth_time=None) is NextStep.LOGIN


def test_next_step_inactive_user_is_login() -> None:
    inactive = User(id="u3", email="x@example.com", is_active=False)
    assert decide(make_request(), user=inactive) is NextStep.LOGIN


def test_next_step_prompt_login_with_older_session_is_login() -> None:
    assert (
        decide(make_request(prompt="login"), remembered=frozenset({"read"}))
        is NextStep.LOGIN
    )


def test_next_step_prompt_login_after_fresh_login_responds() -> None:
    step = decide(
        make_request(prompt="login"), auth_time=NOW, remembered=frozenset({"read"})
    )
    assert step is NextStep.RESPOND


def test_next_step_without_remembered_consent_is_consent() -> None:
    assert decide(make_request()) is NextStep.CONSENT


def test_next_step_remembered_narrower_consent_is_consent() -> None:
    assert (
        decide(make_request("read write"), remembered=frozenset({"read"}))
        is NextStep.CONSENT
    )


def test_next_step_remembered_consent_responds() -> None:
    assert (
        decide(make_request("read"), remembered=frozenset({"read", "write"}))
        is NextStep.RESPOND
    )


def test_next_step_first_party_client_skips_consent() -> None:
    assert (
        decide(make_request(), client=make_client(is_first_party=True))
        is NextStep.RESPOND
    )


def test_next_step_prompt_consent_forces_consent_even_when_remembered() -> None:
    step = decide(
        make_request(prompt="consent"),
        remembered=frozenset({"read"}),
        client=make_client(is_first_party=True),
    )
    assert step is NextStep.CONSENT


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"user": None, "auth_time": None}, "login_required"),
        ({}, "consent_required"),
    ],
    ids=["login_required", "consent_required"],
)
def test_next_step_prompt_none_never_shows_a_page(
    kwargs: dict[str, object], error: str
) -> None:
    with pytest.raises(OAuthError) as caught:
        decide(make_request(prompt="none"), **kwargs)  # type: ignore[arg-type]
    assert caught.value.error == error
    assert caught.value.redirect == ErrorRedirect(CB, "s", False, ISSUER)


def test_next_step_admin_scope_for_non_admin_is_invalid_scope() -> None:
    with pytest.raises(OAuthError) as caught:
        decide(make_request("admin"), remembered=frozenset({"admin"}))
    assert caught.value.body() == {
        "error": "invalid_scope",
        "error_description": "The admin scope is reserved for administrators.",
    }
    assert caught.value.redirect is not None


def test_next_step_admin_scope_for_admin_responds() -> None:
    assert (
        decide(make_request("admin"), user=ADMIN, remembered=frozenset({"admin"}))
        is NextStep.RESPOND
    )
