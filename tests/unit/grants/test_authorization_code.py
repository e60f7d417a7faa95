"""The authorization code grant's token half (RFC 6749 §4.1.3; RFC 7636 §4.6; RFC 9700 §4.8.2), on fakes.

``validate`` names the redemption (``CodeRedemption``); ``issue`` spends the code in the store's one step
(``AuthorizationCodeStore.redeem``) and reads the code only when that step spent nothing, to say why.
"""

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.errors import InvalidGrantError, OAuthError
from oauth_service.oauth.grants.authorization_code import AuthorizationCodeGrant
from oauth_service.oauth.models import (
    Client,
    ClientCredentials,
    TokenRequest,
    TokenSet,
    User,
)
from oauth_service.oauth.outcomes import CodeRedemption
from oauth_service.oauth.pkce import s256_challenge
from oauth_service.oauth.storage import CodeClaim, CodeRecord, UserStore
from tests.fakes import (
    ISSUER,
    T0,
    FakeCodeStore,
    FakeStores,
    FixedClock,
    make_issuer,
    shared_keyset,
)
from tests.unit.grants.no_reads import NoUserReads

CB = "https://app.example/cb"
VERIFIER = "v" * 20 + "-._~" + "w" * 30
CODE = "the-code"


def make_client(
    *,
    is_public: bool = True,
    grants: tuple[str, ...] = ("authorization_code", "refresh_token"),
) -> Client:
    return Client(
        client_id="spa",
        name="SPA",
        is_public=is_public,
        grant_types=frozenset(grants),
        redirect_uris=(CB,),
        scopes=frozenset({"read", "write"}),
    )


class CountingCodeStore(FakeCodeStore):
    """The fake code store, noting each call the grant makes."""

    def __init__(self, stores: FakeStores) -> None:
        super().__init__(stores.revoked_tokens, stores.refresh_tokens, stores.users)
        self.calls: list[str] = []

    async def get(self, code_hash: str) -> CodeRecord | None:
        self.calls.append("get")
        return await super().get(code_hash)

    async def redeem(self, claim: CodeClaim) -> CodeRecord | None:
        self.calls.append("redeem")
        return await super().redeem(claim)


class Setup:
    def __init__(
        self, *, allow_plain: bool = False, users: UserStore | None = None
    ) -> None:
        self.stores = FakeStores()
        # The code store reads the code's user from the same users the grant would (``CodeClaim``).
        self.codes = CountingCodeStore(self.stores)
        self.clock = FixedClock()
        self.stores.users.users["u1"] = User(id="u1", email="alice@example.com")
        self.grant = AuthorizationCodeGrant(
            self.codes,
            self.stores.refresh_tokens,
            users if users is not None else self.stores.users,
            make_issuer(self.stores, self.clock),
            allow_plain_pkce=allow_plain,
            clock=self.clock,
        )

    def add_code(self, **overrides: object) -> None:
        values: dict[str, object] = {
            "code_hash": token_hash(CODE),
            "client_id": "spa",
            "user_id": "u1",
            "redirect_uri": CB,
            "scope": frozenset({"read"}),
            "auth_time": T0 - timedelta(minutes=1),
            "expires_at": T0 + timedelta(seconds=60),
            "code_challenge": s256_challenge(VERIFIER),
            "code_challenge_method": "S256",
        }
        values.update(overrides)
        self.codes.codes[token_hash(CODE)] = CodeRecord(**values)  # type: ignore[arg-type]

    async def redeem(
        self, client: Client | None = None, /, **overrides: object
    ) -> dict[str, str | int]:
        client = client or make_client()
        redemption = await self.grant.validate(token_request(**overrides), client)
        return (await self.grant.issue(redemption)).as_dict()


def token_request(**overrides: object) -> TokenRequest:
    values: dict[str, object] = {
        "grant_type": "authorization_code",
        "credentials": ClientCredentials("spa"),
        "code": CODE,
        "redirect_uri": CB,
        "code_verifier": VERIFIER,
    }
    values.update(overrides)
    return TokenRequest(**values)  # type: ignore[arg-type]


async def test_code_redemption_issues_jwt_and_refresh_token() -> None:
    setup = Setup()
    setup.add_code()
    body = await setup.redeem()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
    }
    assert (body["token_type"], body["expires_in"], body["scope"]) == (
        "Bearer",
        600,
        "read",
    )
    claims = shared_keyset().verify(
        str(body["access_token"]), issuer=ISSUER, audience=ISSUER, now=T0.timestamp()
    )
    assert (claims["sub"], claims["client_id"], claims["scope"]) == (
        "u1",
        "spa",
        "read",
    )
    assert claims["auth_time"] == int((T0 - timedelta(minutes=1)).timestamp())
    used = setup.codes.codes[token_hash(CODE)]
    assert used.used_at == T0
    assert used.access_jti == claims["jti"]
    [refresh] = setup.stores.refresh_tokens.tokens.values()
    assert refresh.family_id == used.family_id
    # A new family's id grows with time (UUIDv7): its index inserts land on the newest pages.
    assert (refresh.family_id.version, refresh.id.version) == (7, 7)


async def test_code_redemption_without_refresh_grant_has_no_refresh_token() -> None:
    setup = Setup()
    setup.add_code()
    body = await setup.redeem(make_client(grants=("authorization_code",)))
    assert "refresh_token" not in body
    assert setup.stores.refresh_tokens.tokens == {}


async def test_confidential_client_without_pkce_is_accepted() -> None:
    setup = Setup()
    setup.add_code(code_challenge=None, code_challenge_method=None)
    body = await setup.redeem(make_client(is_public=False), code_verifier=None)
    assert body["scope"] == "read"


async def test_plain_pkce_when_enabled_is_accepted() -> None:
    setup = Setup(allow_plain=True)
    setup.add_code(code_challenge=VERIFIER, code_challenge_method="plain")
    assert (await setup.redeem())["scope"] == "read"


OTHER_VERIFIER = "x" * 43


@pytest.mark.parametrize(
    ("code_overrides", "request_overrides", "client_kwargs", "description"),
    [
        ({}, {"code": "unknown"}, {}, "The authorization code is invalid."),
        ({"client_id": "other"}, {}, {}, "The authorization code is invalid."),
        (
            {},
            {"redirect_uri": None},
            {},
            "redirect_uri does not match the authorization request.",
        ),
        (
            {},
            {"redirect_uri": CB + "/x"},
            {},
            "redirect_uri does not match the authorization request.",
        ),
        (
            {"redirect_uri": None},
            {"redirect_uri": "https://evil.example/"},
            {},
            "redirect_uri does not match the authorization request.",
        ),
        ({}, {"code_verifier": None}, {}, "Missing 'code_verifier' parameter."),
        ({}, {"code_verifier": "short"}, {}, "The code_verifier is malformed."),
        (
            {},
            {"code_verifier": OTHER_VERIFIER},
            {},
            "The code_verifier does not match the code_challenge.",
        ),
        (
            {"code_challenge": None, "code_challenge_method": None},
            {},
            {"is_public": False},
            "code_verifier sent for a code issued without code_challenge.",
        ),
        (
            {"code_challenge": None, "code_challenge_method": None},
            {"code_verifier": None},
            {},
            "PKCE is required for public clients.",
        ),
        (
            {"code_challenge": VERIFIER, "code_challenge_method": "plain"},
            {},
            {},
            "The code_verifier does not match the code_challenge.",
        ),
        ({"expires_at": T0}, {}, {}, "The authorization code expired."),
        ({"user_id": "gone"}, {}, {}, "The authorization code is invalid."),
    ],
    ids=[
        "unknown",
        "other-client",
        "redirect-missing",
        "redirect-differs",
        "redirect-not-registered",
        "verifier-missing",
        "verifier-malformed",
        "verifier-wrong",
        "downgrade",
        "public-without-pkce",
        "plain-disabled",
        "expired",
        "user-gone",
    ],
)
async def test_code_redemption_errors_are_invalid_grant(
    code_overrides: dict[str, object],
    request_overrides: dict[str, object],
    client_kwargs: dict[str, object],
    description: str,
) -> None:
    setup = Setup()
    setup.add_code(**code_overrides)
    client = make_client(is_public=client_kwargs.get("is_public", True) is True)
    with pytest.raises(OAuthError) as caught:
        await setup.redeem(client, **request_overrides)
    assert caught.value.body() == {
        "error": "invalid_grant",
        "error_description": description,
    }
    assert setup.codes.codes[token_hash(CODE)].used_at is None


async def test_code_replay_revokes_refresh_family_and_access_token() -> None:
    setup = Setup()
    setup.add_code()
    first = await setup.redeem()
    used = setup.codes.codes[token_hash(CODE)]
    with pytest.raises(InvalidGrantError) as caught:
        await setup.redeem()
    assert caught.value.description == "The authorization code was already used."
    assert setup.stores.refresh_tokens.revoked_families == [used.family_id]
    assert used.access_jti in setup.stores.revoked_tokens.revoked
    [refresh] = setup.stores.refresh_tokens.tokens.values()
    assert refresh.revoked_at == T0
    assert "refresh_token" in first


@pytest.mark.parametrize(
    "overrides",
    [{"code_verifier": OTHER_VERIFIER}, {"redirect_uri": "https://app.example/other"}],
    ids=["bad-verifier", "bad-redirect-uri"],
)
async def test_code_replay_with_bad_proof_revokes_nothing(
    overrides: dict[str, object],
) -> None:
    setup = Setup()
    setup.add_code()
    await setup.redeem()
    with pytest.raises(InvalidGrantError):
        await setup.redeem(**overrides)
    assert setup.stores.refresh_tokens.revoked_families == []
    assert setup.stores.revoked_tokens.revoked == {}


async def test_code_replay_by_other_client_revokes_nothing() -> None:
    setup = Setup()
    setup.add_code()
    await setup.redeem()
    other = dataclasses.replace(make_client(), client_id="intruder")
    with pytest.raises(InvalidGrantError):
        await setup.redeem(other)
    assert setup.stores.refresh_tokens.revoked_families == []


async def test_concurrent_redemptions_only_one_wins() -> None:
    setup = Setup()
    setup.add_code()
    redemption = await setup.grant.validate(token_request(), make_client())
    results = await asyncio.gather(
        setup.grant.issue(redemption),
        setup.grant.issue(redemption),
        return_exceptions=True,
    )
    [won] = [r for r in results if isinstance(r, TokenSet)]
    [lost] = [r for r in results if isinstance(r, InvalidGrantError)]
    assert lost.description == "The authorization code was already used."
    # The code was spent once: it records the winner's access token, and one refresh token was stored.
    assert setup.codes.codes[token_hash(CODE)].access_jti == won.jti
    assert len(setup.stores.refresh_tokens.tokens) == 1
    assert setup.codes.calls.count("redeem") == 2


async def test_code_redemption_happy_path_is_one_store_step_and_no_user_read() -> None:
    # The store's step returns the code with its user: no separate read of the code or of the user.
    setup = Setup(users=NoUserReads())
    setup.add_code()
    body = await setup.redeem()
    assert (body["token_type"], body["scope"]) == ("Bearer", "read")
    assert setup.codes.calls == ["redeem"]


async def test_code_with_user_deactivated_is_refused_without_spending_it() -> None:
    setup = Setup(users=NoUserReads())
    inactive = dataclasses.replace(setup.stores.users.users["u1"], is_active=False)
    setup.stores.users.users["u1"] = inactive
    # The refusal reads the code with its user loaded: the grant still reads no user of its own.
    setup.add_code(user=inactive)
    with pytest.raises(OAuthError) as caught:
        await setup.redeem()
    assert caught.value.body() == {
        "error": "invalid_grant",
        "error_description": "The authorization code is invalid.",
    }
    assert setup.codes.calls == ["redeem", "get"]
    assert setup.codes.codes[token_hash(CODE)].used_at is None
    assert setup.stores.refresh_tokens.tokens == {}


async def test_validate_names_the_redemption_without_touching_the_store() -> None:
    setup = Setup()
    setup.add_code()
    redemption = await setup.grant.validate(token_request(), make_client())
    assert redemption == CodeRedemption(
        make_client(),
        token_hash(CODE),
        CB,
        VERIFIER,
        with_refresh=True,
        as_of=T0,
    )
    assert setup.codes.calls == []


@pytest.mark.parametrize(
    ("code_overrides", "description"),
    [
        ({}, "The code_verifier is malformed."),
        (
            {"code_challenge": None, "code_challenge_method": None},
            "code_verifier sent for a code issued without code_challenge.",
        ),
    ],
    ids=["with-challenge", "without-challenge"],
)
@pytest.mark.parametrize(
    "verifier",
    ["short", "v" * 129, "v" * 42 + " ", "v" * 42 + "+", "\u00e9" * 43],
    ids=["too-short", "too-long", "space", "plus", "non-ascii"],
)
async def test_malformed_verifier_never_calls_redeem(
    code_overrides: dict[str, object], description: str, verifier: str
) -> None:
    setup = Setup()
    setup.add_code(**code_overrides)
    client = make_client(is_public=False)
    with pytest.raises(InvalidGrantError) as caught:
        await setup.redeem(client, code_verifier=verifier)
    assert caught.value.description == description
    assert setup.codes.calls == ["get"]
    assert setup.codes.codes[token_hash(CODE)].used_at is None


async def test_malformed_verifier_replay_revokes_nothing() -> None:
    setup = Setup()
    setup.add_code()
    await setup.redeem()
    setup.codes.calls.clear()
    with pytest.raises(InvalidGrantError) as caught:
        await setup.redeem(code_verifier="short")
    assert caught.value.description == "The code_verifier is malformed."
    assert setup.codes.calls == ["get"]
    assert setup.stores.refresh_tokens.revoked_families == []
    assert setup.stores.revoked_tokens.revoked == {}
