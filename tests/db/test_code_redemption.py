"""``AuthorizationCodeStore.redeem`` on SQLite (a short transaction) and Postgres (one statement): the contract of
``oauth.storage.CodeClaim``. A redemption returns the code with its user, marks it used with what it issued and
stores its refresh token; a refusal returns None having changed nothing; of concurrent redemptions one wins."""

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.oauth import pkce
from oauth_service.oauth.models import User
from oauth_service.oauth.storage import CodeClaim, CodeRecord, Stores
from oauth_service.runtime import Runtime
from tests.db.spending import (
    FAMILY_LIFETIME,
    OTHER_REDIRECT,
    REDIRECT,
    T0,
    code_claim,
    code_record,
    code_row,
    count_refresh,
    deactivate,
    new_token,
    refresh_rows,
)
from tests.factories import make_client, make_user

VERIFIER = "v" * 43
CHALLENGE = pkce.s256_challenge(VERIFIER)
AT = T0 + timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Seeded:
    user: User


@pytest.fixture
async def seeded(runtime: Runtime) -> Seeded:
    user, _ = await make_user(runtime)
    for client_id in ("web", "other"):
        await make_client(
            runtime,
            client_id=client_id,
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT, OTHER_REDIRECT),
        )
    return Seeded(user)


async def _saved(stores: Stores, code: CodeRecord) -> CodeRecord:
    await stores.codes.save(code)
    return code


async def _unchanged(observer: AsyncEngine, code: CodeRecord) -> None:
    """The code is unused, bound to nothing issued, and no refresh token was stored."""
    stored = await code_row(observer, code.code_hash)
    assert stored == code
    assert (stored.used_at, stored.family_id, stored.access_jti) == (None, None, None)
    assert stored.access_expires_at is None
    assert await count_refresh(observer) == 0


async def test_redeem_returns_the_code_with_its_user_and_stores_its_refresh_token(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    code = await _saved(
        stores, code_record(seeded.user.id, challenge=CHALLENGE, method="S256")
    )
    claim = code_claim(code, at=AT, s256_challenge=CHALLENGE, verifier_sent=True)
    spent = await stores.codes.redeem(claim)
    assert spent is not None
    assert (spent.code_hash, spent.client_id, spent.user_id) == (
        code.code_hash,
        "web",
        seeded.user.id,
    )
    assert (spent.redirect_uri, spent.scope, spent.auth_time) == (
        REDIRECT,
        code.scope,
        T0,
    )
    assert (spent.code_challenge, spent.code_challenge_method) == (CHALLENGE, "S256")
    assert spent.user == seeded.user
    used = await code_row(observer, code.code_hash)
    assert (used.used_at, used.family_id) == (AT, claim.family_id)
    assert (used.access_jti, used.access_expires_at) == (
        claim.access.jti,
        claim.access.expires_at,
    )
    assert claim.refresh is not None
    [refresh] = await refresh_rows(observer)
    assert (refresh.id, refresh.token_hash) == (
        claim.refresh.id,
        claim.refresh.token_hash,
    )
    assert (refresh.family_id, refresh.parent_id) == (claim.family_id, None)
    assert (refresh.client_id, refresh.user_id, refresh.scope) == (
        "web",
        seeded.user.id,
        code.scope,
    )
    assert (refresh.auth_time, refresh.issued_at) == (T0, AT)
    assert refresh.expires_at == claim.refresh.idle_until
    assert refresh.family_expires_at == claim.family_expires_at
    assert (refresh.access_jti, refresh.access_expires_at) == (
        claim.access.jti,
        claim.access.expires_at,
    )
    assert (refresh.rotated_at, refresh.revoked_at) == (None, None)


async def test_redeem_without_refresh_stores_none(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    code = await _saved(stores, code_record(seeded.user.id))
    claim = code_claim(code, with_refresh=False)
    assert await stores.codes.redeem(claim) is not None
    assert (await code_row(observer, code.code_hash)).family_id == claim.family_id
    assert await count_refresh(observer) == 0


async def test_redeem_ends_the_refresh_token_with_its_family(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    code = await _saved(stores, code_record(seeded.user.id))
    claim = code_claim(code, at=AT, idle=FAMILY_LIFETIME + timedelta(days=1))
    assert await stores.codes.redeem(claim) is not None
    [refresh] = await refresh_rows(observer)
    assert refresh.expires_at == claim.family_expires_at


# (stored redirect_uri, sent redirect_uri, sent one registered) -> redeemed
REDIRECT_CASES = [
    pytest.param(REDIRECT, REDIRECT, True, True, id="stored-sent-equal"),
    pytest.param(
        REDIRECT, REDIRECT, False, True, id="stored-sent-equal-no-longer-registered"
    ),
    pytest.param(REDIRECT, OTHER_REDIRECT, True, False, id="stored-sent-other"),
    pytest.param(REDIRECT, None, True, False, id="stored-none-sent"),
    pytest.param(None, None, True, True, id="none-stored-none-sent"),
    pytest.param(None, OTHER_REDIRECT, True, True, id="none-stored-registered-sent"),
    pytest.param(
        None, "https://evil.example/cb", False, False, id="none-stored-unregistered"
    ),
    pytest.param(None, None, False, False, id="none-stored-not-registered"),
]


@pytest.mark.parametrize(("stored", "sent", "registered", "redeemed"), REDIRECT_CASES)
async def test_redeem_checks_the_redirect_uri(
    seeded: Seeded,
    stores: Stores,
    observer: AsyncEngine,
    stored: str | None,
    sent: str | None,
    registered: bool,
    redeemed: bool,
) -> None:
    code = await _saved(stores, code_record(seeded.user.id, redirect_uri=stored))
    claim = code_claim(code, redirect_uri=sent, redirect_uri_registered=registered)
    spent = await stores.codes.redeem(claim)
    assert (spent is not None) is redeemed
    if redeemed:
        assert await count_refresh(observer) == 1
    else:
        await _unchanged(observer, code)


# (stored challenge, stored method, S256 of the verifier sent, plain verifier sent (if allowed), verifier sent,
# public client) -> redeemed
PKCE_CASES = [
    pytest.param(CHALLENGE, "S256", CHALLENGE, None, True, True, True, id="s256-right"),
    pytest.param(
        CHALLENGE,
        "S256",
        pkce.s256_challenge("w" * 43),
        None,
        True,
        True,
        False,
        id="s256-wrong",
    ),
    pytest.param(
        CHALLENGE, "S256", None, None, False, True, False, id="s256-no-verifier"
    ),
    pytest.param(
        CHALLENGE,
        "S256",
        None,
        None,
        False,
        False,
        False,
        id="s256-no-verifier-confidential",
    ),
    pytest.param(
        CHALLENGE,
        "S256",
        pkce.s256_challenge(CHALLENGE),
        CHALLENGE,
        True,
        True,
        False,
        id="s256-stored-challenge-as-plain-verifier",
    ),
    pytest.param(
        VERIFIER,
        "plain",
        CHALLENGE,
        VERIFIER,
        True,
        True,
        True,
        id="plain-allowed-right",
    ),
    pytest.param(
        VERIFIER,
        "plain",
        CHALLENGE,
        None,
        True,
        True,
        False,
        id="plain-not-allowed",
    ),
    pytest.param(
        VERIFIER,
        "plain",
        pkce.s256_challenge("w" * 43),
        "w" * 43,
        True,
        True,
        False,
        id="plain-allowed-wrong",
    ),
    pytest.param(None, None, None, None, False, False, True, id="none-confidential"),
    pytest.param(None, None, None, None, False, True, False, id="none-public"),
    pytest.param(
        None,
        None,
        CHALLENGE,
        None,
        True,
        False,
        False,
        id="none-confidential-verifier-sent",
    ),
]


@pytest.mark.parametrize(
    ("challenge", "method", "s256", "plain", "verifier_sent", "public", "redeemed"),
    PKCE_CASES,
)
@pytest.mark.parametrize("with_refresh", [True, False], ids=["refresh", "no-refresh"])
async def test_redeem_checks_pkce(
    seeded: Seeded,
    stores: Stores,
    observer: AsyncEngine,
    challenge: str | None,
    method: str | None,
    s256: str | None,
    plain: str | None,
    verifier_sent: bool,
    public: bool,
    redeemed: bool,
    with_refresh: bool,
) -> None:
    code = await _saved(
        stores, code_record(seeded.user.id, challenge=challenge, method=method)
    )
    claim = code_claim(
        code,
        s256_challenge=s256,
        plain_challenge=plain,
        verifier_sent=verifier_sent,
        public_client=public,
        with_refresh=with_refresh,
    )
    spent = await stores.codes.redeem(claim)
    assert (spent is not None) is redeemed
    if redeemed:
        assert (await code_row(observer, code.code_hash)).used_at == claim.at
        assert await count_refresh(observer) == (1 if with_refresh else 0)
    else:
        await _unchanged(observer, code)


async def test_redeem_refused_for_another_client(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    code = await _saved(stores, code_record(seeded.user.id))
    assert await stores.codes.redeem(code_claim(code, client_id="other")) is None
    await _unchanged(observer, code)


async def test_redeem_refused_for_an_unknown_code(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    code = await _saved(stores, code_record(seeded.user.id))
    unknown = dataclasses.replace(code_claim(code), code_hash="0" * 64)
    assert await stores.codes.redeem(unknown) is None
    await _unchanged(observer, code)


@pytest.mark.parametrize("after", [timedelta(0), timedelta(seconds=1)])
async def test_redeem_refused_once_expired(
    seeded: Seeded, stores: Stores, observer: AsyncEngine, after: timedelta
) -> None:
    code = await _saved(stores, code_record(seeded.user.id))
    assert (
        await stores.codes.redeem(code_claim(code, at=code.expires_at + after)) is None
    )
    await _unchanged(observer, code)


async def test_redeem_refused_for_an_inactive_user(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    code = await _saved(stores, code_record(seeded.user.id))
    await deactivate(observer, seeded.user.id)
    assert await stores.codes.redeem(code_claim(code)) is None
    await _unchanged(observer, code)


async def test_redeem_refused_once_used_changes_nothing(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    code = await _saved(stores, code_record(seeded.user.id))
    first = code_claim(code, at=AT)
    assert await stores.codes.redeem(first) is not None
    again = code_claim(code, at=AT + timedelta(seconds=1))
    assert await stores.codes.redeem(again) is None
    used = await code_row(observer, code.code_hash)
    assert (used.used_at, used.family_id, used.access_jti) == (
        AT,
        first.family_id,
        first.access.jti,
    )
    assert [token.family_id for token in await refresh_rows(observer)] == [
        first.family_id
    ]


async def test_redeem_stays_undone_when_its_refresh_token_cannot_be_stored(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    """All or nothing: a refresh insert that fails (a duplicate hash) leaves the code redeemable."""
    code = await _saved(stores, code_record(seeded.user.id))
    taken = new_token("web", seeded.user.id)
    await stores.refresh_tokens.save(taken)
    claim = code_claim(code)
    assert claim.refresh is not None
    duplicate = dataclasses.replace(
        claim, refresh=dataclasses.replace(claim.refresh, token_hash=taken.token_hash)
    )
    # SQLAlchemy's error on SQLite; asyncpg's own on Postgres, whose statement runs on asyncpg itself.
    with pytest.raises((IntegrityError, asyncpg.UniqueViolationError)):
        await stores.codes.redeem(duplicate)
    stored = await code_row(observer, code.code_hash)
    assert (stored.used_at, stored.family_id) == (None, None)
    assert [token.id for token in await refresh_rows(observer)] == [taken.id]
    assert await stores.codes.redeem(claim) is not None


async def test_concurrent_redemptions_of_one_code_have_one_winner(
    seeded: Seeded, stores: Stores, observer: AsyncEngine
) -> None:
    code = await _saved(stores, code_record(seeded.user.id))
    claims: list[CodeClaim] = [code_claim(code, at=AT) for _ in range(20)]
    results = await asyncio.gather(*(stores.codes.redeem(claim) for claim in claims))
    winners = [claim for claim, spent in zip(claims, results, strict=True) if spent]
    assert len(winners) == 1
    [refresh] = await refresh_rows(observer)
    assert refresh.family_id == winners[0].family_id
    used = await code_row(observer, code.code_hash)
    assert (used.family_id, used.access_jti) == (
        winners[0].family_id,
        winners[0].access.jti,
    )
