"""The password grant gives the user store's connection back after reading the user, before the hash waits."""

import pytest

from oauth_service.crypto.passwords import PasswordCheck
from oauth_service.oauth.errors import InvalidGrantError
from oauth_service.oauth.grants import PasswordGrant
from oauth_service.oauth.models import ClientCredentials, TokenRequest, User
from tests.fakes import (
    FakeStores,
    FakeUserStore,
    FixedClock,
    confidential_client,
    fast_hasher,
    make_issuer,
)

PASSWORD = "correct horse battery"


class ReleaseCheckingVerifier:
    """A verifier that notes how often the user store had released when each check began."""

    def __init__(self, users: FakeUserStore) -> None:
        self._users = users
        self._real = fast_hasher()
        self.releases_seen: list[int] = []

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        self.releases_seen.append(self._users.releases)
        return await self._real.verify(stored_hash, password)


def _grant() -> tuple[PasswordGrant, FakeStores, ReleaseCheckingVerifier]:
    stores = FakeStores()
    stores.users.users["u1"] = User(
        id="u1",
        email="alice@example.com",
        is_active=True,
        is_admin=False,
        password_hash=fast_hasher().hash_sync(PASSWORD),
    )
    verifier = ReleaseCheckingVerifier(stores.users)
    clock = FixedClock()
    grant = PasswordGrant(
        stores.users, verifier, make_issuer(stores, clock), clock=clock
    )
    return grant, stores, verifier


def _request(email: str, password: str) -> TokenRequest:
    return TokenRequest(
        "password", ClientCredentials("conf"), email=email, password=password
    )


async def test_password_grant_releases_store_before_hash_then_issues() -> None:
    grant, stores, verifier = _grant()
    response = await grant.issue(
        await grant.validate(
            _request("alice@example.com", PASSWORD), confidential_client()
        )
    )
    assert verifier.releases_seen == [1]
    assert response.refresh_token is not None
    assert len(stores.refresh_tokens.tokens) == 1


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", "wrong"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
async def test_password_grant_releases_store_before_hash_on_failure(
    email: str, password: str
) -> None:
    # Failures wait for the same hash (timing stays flat), so they let go of the connection the same way.
    grant, _stores, verifier = _grant()
    with pytest.raises(InvalidGrantError):
        await grant.validate(_request(email, password), confidential_client())
    assert verifier.releases_seen == [1]
