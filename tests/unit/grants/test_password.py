"""The password grant (RFC 6749 §4.3): email/username, identical failures, admin scope, rehash, refresh."""

import dataclasses
import time

import pytest

from oauth_service.crypto.passwords import PasswordCheck, PasswordHasher
from oauth_service.oauth.errors import OAuthError
from oauth_service.oauth.grants import PasswordGrant
from oauth_service.oauth.models import ClientCredentials, TokenRequest, User
from tests.fakes import (
    ISSUER,
    T0,
    FakeStores,
    FakeUserStore,
    FixedClock,
    confidential_client,
    fast_hasher,
    make_issuer,
    shared_keyset,
)

PASSWORD = "correct horse battery"
CLIENT = confidential_client()


def _setup(
    *, is_admin: bool = False, is_active: bool = True
) -> tuple[PasswordGrant, FakeStores]:
    stores = FakeStores()
    user = User(
        id="u1",
        email="Alice@example.com",
        is_active=is_active,
        is_admin=is_admin,
        password_hash=fast_hasher().hash_sync(PASSWORD),
    )
    stores.users.users[user.id] = user
    clock = FixedClock()
    return PasswordGrant(
        stores.users, fast_hasher(), make_issuer(stores, clock), clock=clock
    ), stores


def _request(
    email: str | None = "alice@example.com",
    password: str | None = PASSWORD,
    scope: frozenset[str] | None = None,
) -> TokenRequest:
    return TokenRequest(
        "password",
        ClientCredentials("conf"),
        scope=scope,
        email=email,
        password=password,
    )


async def test_password_valid_credentials_issue_access_and_refresh() -> None:
    strategy, stores = _setup()
    grant = await strategy.validate(_request(), CLIENT)
    assert grant.subject == "u1"
    assert grant.scope == {"read", "write"}
    assert grant.auth_time == T0
    response = await strategy.issue(grant)
    assert response.refresh_token is not None
    assert len(stores.refresh_tokens.tokens) == 1
    claims = shared_keyset().verify(
        response.access_token, issuer=ISSUER, audience=ISSUER, now=T0.timestamp()
    )
    assert claims["sub"] == "u1"
    assert claims["auth_time"] == int(T0.timestamp())
    assert claims["scope"] == "read write"


async def test_password_client_without_refresh_grant_gets_no_refresh_token() -> None:
    strategy, stores = _setup()
    client = confidential_client(grant_types=("password",))
    response = await strategy.issue(await strategy.validate(_request(), client))
    assert response.refresh_token is None
    assert stores.refresh_tokens.tokens == {}


async def test_password_admin_user_may_request_admin_scope() -> None:
    strategy, _ = _setup(is_admin=True)
    grant = await strategy.validate(_request(scope=frozenset({"admin"})), CLIENT)
    assert grant.scope == {"admin"}


async def test_password_admin_user_without_scope_gets_default_without_admin() -> None:
    strategy, _ = _setup(is_admin=True)
    default = await strategy.validate(_request(), CLIENT)
    assert default.scope == {"read", "write"}


@pytest.mark.parametrize(
    ("kwargs", "setup", "error", "description"),
    [
        (
            {"email": "bob@example.com"},
            {},
            "invalid_grant",
            "Invalid email or password.",
        ),
        (
            {"password": "wrong password!"},
            {},
            "invalid_grant",
            "Invalid email or password.",
        ),
        ({}, {"is_active": False}, "invalid_grant", "Invalid email or password."),
        ({"email": None}, {}, "invalid_request", "Missing 'email' parameter."),
        ({"password": ""}, {}, "invalid_request", "Missing 'password' parameter."),
        (
            {"scope": frozenset({"admin"})},
            {},
            "invalid_scope",
            "The requested scope exceeds what may be granted.",
        ),
    ],
    ids=[
        "invalid_grant-unknown-email",
        "invalid_grant-wrong-password",
        "invalid_grant-inactive",
        "invalid_request-no-email",
        "invalid_request-no-password",
        "invalid_scope-admin-for-non-admin",
    ],
)
async def test_password_errors(
    kwargs: dict[str, object], setup: dict[str, bool], error: str, description: str
) -> None:
    strategy, _ = _setup(**setup)
    with pytest.raises(OAuthError) as caught:
        await strategy.validate(_request(**kwargs), CLIENT)  # type: ignore[arg-type]
    assert caught.value.body() == {"error": error, "error_description": description}


def _outdated_setup() -> tuple[PasswordGrant, FakeStores, str]:
    """A user whose hash was made with weaker argon2 parameters than the grant's hasher."""
    stores = FakeStores()
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    old_hash = weak.hash_sync(PASSWORD)
    stores.users.users["u1"] = User(
        id="u1", email="a@example.com", password_hash=old_hash
    )
    clock = FixedClock()
    strategy = PasswordGrant(
        stores.users, stronger, make_issuer(stores, clock), clock=clock
    )
    return strategy, stores, old_hash


async def test_password_outdated_hash_is_upgraded_on_issue() -> None:
    strategy, stores, old_hash = _outdated_setup()
    grant = await strategy.validate(_request(email="a@example.com"), CLIENT)
    change = grant.change
    assert change is not None
    assert (change.user_id, change.replacing) == ("u1", old_hash)
    assert change.new_hash != old_hash
    # validate decides; only issue writes.
    assert stores.users.users["u1"].password_hash == old_hash
    await strategy.issue(grant)
    assert stores.users.users["u1"].password_hash == change.new_hash


async def test_password_rehash_keeps_a_password_change_committed_meanwhile() -> None:
    strategy, stores, _old_hash = _outdated_setup()
    grant = await strategy.validate(_request(email="a@example.com"), CLIENT)
    assert grant.change is not None
    changed = fast_hasher().hash_sync("a new password entirely")
    stores.users.users["u1"] = dataclasses.replace(
        stores.users.users["u1"], password_hash=changed
    )
    await strategy.issue(grant)
    assert stores.users.users["u1"].password_hash == changed


async def test_password_current_hash_carries_no_change() -> None:
    strategy, _ = _setup()
    grant = await strategy.validate(_request(), CLIENT)
    assert grant.change is None


class RecordingUsers(FakeUserStore):
    """The fake user store, noting each call into a log shared with the verifier."""

    def __init__(self, log: list[str], users: list[User]) -> None:
        super().__init__(users)
        self.log = log

    async def get(self, user_id: str) -> User | None:
        self.log.append("get")
        return await super().get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        self.log.append("get_by_email")
        return await super().get_by_email(email)

    async def update_password_hash(
        self, user_id: str, password_hash: str, *, replacing: str
    ) -> None:
        self.log.append("update_password_hash")
        await super().update_password_hash(user_id, password_hash, replacing=replacing)


class RecordingVerifier:
    """The fast hasher, noting each verification into the shared log."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        self.log.append("verify")
        return await fast_hasher().verify(stored_hash, password)


def _recording_setup() -> tuple[PasswordGrant, list[str]]:
    log: list[str] = []
    user = User(
        id="u1",
        email="alice@example.com",
        password_hash=fast_hasher().hash_sync(PASSWORD),
    )
    users = RecordingUsers(log, [user])
    stores = FakeStores(users=users)
    clock = FixedClock()
    strategy = PasswordGrant(
        users, RecordingVerifier(log), make_issuer(stores, clock), clock=clock
    )
    return strategy, log


async def test_password_validate_reads_the_user_once_then_verifies() -> None:
    # Each store operation is its own unit of work: nothing is held across the hash, so there is nothing to
    # give back before it (the user store has no such operation). The user is read once, then verified.
    strategy, log = _recording_setup()
    grant = await strategy.validate(_request(), CLIENT)
    assert log == ["get_by_email", "verify"]
    await strategy.issue(grant)
    assert log == ["get_by_email", "verify"]  # issuing reads no user again


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
async def test_password_validate_failure_reads_once_and_verifies_once(
    email: str, password: str
) -> None:
    # A failure waits for the same one verification (a dummy hash for an unknown email): timing stays flat.
    strategy, log = _recording_setup()
    with pytest.raises(OAuthError):
        await strategy.validate(_request(email=email, password=password), CLIENT)
    assert log == ["get_by_email", "verify"]


async def test_password_unknown_email_costs_as_much_as_wrong_password() -> None:
    hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
    stores = FakeStores()
    stores.users.users["u1"] = dataclasses.replace(
        User(id="u1", email="a@example.com"), password_hash=hasher.hash_sync(PASSWORD)
    )
    clock = FixedClock()
    strategy = PasswordGrant(
        stores.users, hasher, make_issuer(stores, clock), clock=clock
    )

    async def elapsed(email: str) -> float:
        start = time.perf_counter()
        with pytest.raises(OAuthError):
            await strategy.validate(
                _request(email=email, password="wrong password!"), CLIENT
            )
        return time.perf_counter() - start

    known = min([await elapsed("a@example.com") for _ in range(3)])
    unknown = min([await elapsed("nobody@example.com") for _ in range(3)])
    assert unknown > known * 0.5
