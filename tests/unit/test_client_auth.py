"""Client authentication (RFC 6749 §2.3.1): methods, public clients, constant-time failures."""

import dataclasses

import pytest

from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.client_auth import authenticate_client
from oauth_service.oauth.errors import InvalidClientError
from oauth_service.oauth.models import AuthMethod, Client, ClientCredentials
from tests.fakes import (
    CLIENT_SECRET,
    FakeClientStore,
    confidential_client,
    public_client,
)

STORE = FakeClientStore([confidential_client(), public_client()])


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_auth_confidential_with_secret_succeeds(
    method: AuthMethod,
) -> None:
    creds = ClientCredentials("conf", CLIENT_SECRET, method)
    client = await authenticate_client(creds, STORE, allow_public=False)
    assert client.client_id == "conf"


async def test_client_auth_public_with_none_succeeds_when_allowed() -> None:
    client = await authenticate_client(
        ClientCredentials("spa"), STORE, allow_public=True
    )
    assert client.client_id == "spa"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_auth_public_with_empty_secret_is_identified_not_refused(
    method: AuthMethod,
) -> None:
    # Swagger UI's password flow sends ``Authorization: Basic base64("docs:")`` for a public client.
    client = await authenticate_client(
        ClientCredentials("spa", "", method), STORE, allow_public=True
    )
    assert client.client_id == "spa"


@pytest.mark.parametrize(
    ("creds", "allow_public", "basic"),
    [
        (ClientCredentials("conf", "wrong", "client_secret_basic"), False, True),
        (ClientCredentials("conf", "wrong", "client_secret_post"), False, False),
        (ClientCredentials("conf", None, "none"), True, False),
        (ClientCredentials("ghost", CLIENT_SECRET, "client_secret_basic"), False, True),
        (ClientCredentials("ghost", None, "none"), True, False),
        (ClientCredentials(None, None, "none"), True, False),
        (ClientCredentials("spa", None, "none"), False, False),
        (ClientCredentials("spa", "anything", "client_secret_post"), True, False),
        (ClientCredentials("spa", "anything", "client_secret_basic"), True, True),
        (ClientCredentials("spa", "", "client_secret_basic"), False, True),
        (ClientCredentials("conf", "", "client_secret_basic"), False, True),
    ],
    ids=[
        "wrong-secret-basic",
        "wrong-secret-post",
        "confidential-skips-auth",
        "unknown-client-basic",
        "unknown-client-none",
        "no-client-id",
        "public-where-grant-needs-confidential",
        "public-with-secret",
        "public-with-basic-secret",
        "public-empty-basic-where-grant-needs-confidential",
        "confidential-empty-secret",
    ],
)
async def test_client_auth_failure_is_invalid_client(
    creds: ClientCredentials, allow_public: bool, basic: bool
) -> None:
    with pytest.raises(InvalidClientError) as caught:
        await authenticate_client(creds, STORE, allow_public=allow_public)
    assert caught.value.body() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed.",
    }
    assert caught.value.http_status == (401 if basic else 400)
    assert ("WWW-Authenticate" in caught.value.headers()) is basic


async def test_client_auth_confidential_without_stored_secret_fails() -> None:
    store = FakeClientStore(
        [dataclasses.replace(confidential_client("broken"), secret_hash=None)]
    )
    creds = ClientCredentials("broken", CLIENT_SECRET, "client_secret_post")
    with pytest.raises(InvalidClientError):
        await authenticate_client(creds, store, allow_public=False)


class StaleClientStore:
    """Any ``ClientStore`` whose ``get`` answers an older registration than ``reload`` (no cache class)."""

    def __init__(self, stale: Client, fresh: Client | None) -> None:
        self.stale = stale
        self.fresh = fresh
        self.reloads = 0

    async def get(self, client_id: str) -> Client | None:
        assert client_id == self.stale.client_id
        return self.stale

    async def reload(self, client_id: str) -> Client | None:
        assert client_id == self.stale.client_id
        self.reloads += 1
        return self.fresh


async def test_client_auth_rotated_secret_is_accepted_from_a_fresh_read() -> None:
    # Whatever the store (no isinstance check): a secret refused by ``get``'s answer is checked once against
    # ``reload``'s, so a rotation never locks the new secret out.
    stale = dataclasses.replace(
        confidential_client(), secret_hash=token_hash("the old secret")
    )
    store = StaleClientStore(stale, confidential_client())
    creds = ClientCredentials("conf", CLIENT_SECRET, "client_secret_basic")
    client = await authenticate_client(creds, store, allow_public=False)
    assert client.secret_hash == token_hash(CLIENT_SECRET)
    assert store.reloads == 1


@pytest.mark.parametrize(
    "fresh",
    [
        None,
        public_client("conf"),
        dataclasses.replace(confidential_client(), secret_hash=None),
        dataclasses.replace(confidential_client(), secret_hash=token_hash("other")),
    ],
    ids=["deleted", "now-public", "no-secret", "other-secret"],
)
async def test_client_auth_wrong_secret_is_refused_after_one_fresh_read(
    fresh: Client | None,
) -> None:
    stale = dataclasses.replace(
        confidential_client(), secret_hash=token_hash("the old secret")
    )
    store = StaleClientStore(stale, fresh)
    creds = ClientCredentials("conf", CLIENT_SECRET, "client_secret_post")
    with pytest.raises(InvalidClientError):
        await authenticate_client(creds, store, allow_public=False)
    assert store.reloads == 1


async def test_client_auth_right_secret_needs_no_fresh_read() -> None:
    store = StaleClientStore(confidential_client(), None)
    creds = ClientCredentials("conf", CLIENT_SECRET, "client_secret_post")
    await authenticate_client(creds, store, allow_public=False)
    assert store.reloads == 0
