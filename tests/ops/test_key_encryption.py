"""Private signing keys encrypted at rest: sealing, legacy plaintext rows, wrong or missing key-encryption key."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.crypto.jwt import generate_key
from oauth_service.crypto.key_encryption import (
    SEALED_PREFIX,
    KeyEncryptionError,
    PrivateKeyCipher,
    generate_encryption_key,
    is_sealed,
)
from oauth_service.db.keys import ensure_signing_key
from tests.conftest import ISSUER, make_settings
from tests.ops.cli_runner import Cli, cli_runner
from tests.ops.signing_keys import (
    preserved_signing_keys,
    stored_private_keys,
    wipe_signing_keys,
)
from tests.ops.test_key_rotation import RETIRE

KEK = generate_encryption_key()
OTHER_KEK = generate_encryption_key()
MISSING = (
    "signing keys in the database are encrypted but OAUTH_KEY_ENCRYPTION_KEY is not set"
)
WRONG = "OAUTH_KEY_ENCRYPTION_KEY does not decrypt the signing keys in the database (wrong key?)"


@pytest.fixture(scope="module")
def pem() -> str:
    """One private key for the unit tests."""
    return generate_key("ES256")[1]


def test_cipher_seal_then_open_round_trips_and_marks_the_value(pem: str) -> None:
    cipher = PrivateKeyCipher(KEK)
    sealed = cipher.seal(pem)
    assert sealed.startswith(SEALED_PREFIX)
    assert "PRIVATE KEY" not in sealed
    assert cipher.open(sealed) == pem


def test_cipher_plaintext_legacy_value_passes_through(pem: str) -> None:
    assert PrivateKeyCipher(KEK).open(pem) == pem
    assert PrivateKeyCipher(None).open(pem) == pem


def test_cipher_without_key_stores_plaintext(pem: str) -> None:
    cipher = PrivateKeyCipher(None)
    assert (cipher.encrypts, cipher.seal(pem), cipher.reseal(pem)) == (False, pem, None)


@pytest.mark.parametrize(
    ("secret", "message"),
    [(None, MISSING), (OTHER_KEK, WRONG)],
    ids=["missing-key", "wrong-key"],
)
def test_cipher_open_sealed_value_without_the_right_key_fails_with_one_line(
    pem: str, secret: str | None, message: str
) -> None:
    sealed = PrivateKeyCipher(KEK).seal(pem)
    with pytest.raises(KeyEncryptionError) as caught:
        PrivateKeyCipher(secret).open(sealed)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "secret", ["not-a-fernet-key", " , "], ids=["malformed", "empty"]
)
def test_cipher_malformed_key_encryption_key_is_refused(secret: str) -> None:
    with pytest.raises(KeyEncryptionError) as caught:
        PrivateKeyCipher(secret)
    assert str(caught.value).startswith("OAUTH_KEY_ENCRYPTION_KEY ")
    assert secret.strip(" ,") == "" or secret not in str(caught.value)


def test_cipher_key_rotation_old_key_opens_and_reseal_moves_to_new_key(
    pem: str,
) -> None:
    old_sealed = PrivateKeyCipher(OTHER_KEK).seal(pem)
    rotated = PrivateKeyCipher(f"{KEK},{OTHER_KEK}")
    assert rotated.open(old_sealed) == pem
    resealed = rotated.reseal(old_sealed)
    assert resealed is not None
    assert PrivateKeyCipher(KEK).open(resealed) == pem
    assert rotated.reseal(resealed) is None  # already under the newest key


def test_cipher_repr_shows_no_key_material() -> None:
    assert repr(PrivateKeyCipher(KEK)) == "PrivateKeyCipher(encrypts=True)"


@pytest.fixture
async def fresh_keys(database: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """No signing keys at the start; the original ones restored afterwards."""
    async with preserved_signing_keys(database):
        await wipe_signing_keys(database)
        yield database


async def test_startup_with_key_encryption_key_stores_new_key_sealed_and_signs(
    db_url: str, fresh_keys: AsyncEngine
) -> None:
    application = create_app(make_settings(db_url, key_encryption_key=KEK))
    async with application.router.lifespan_context(application):
        kid = application.state.runtime.keys.signing.kid
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            jwks = await http.get("/.well-known/jwks.json")
    assert [key["kid"] for key in jwks.json()["keys"]] == [kid]
    stored = await stored_private_keys(fresh_keys)
    assert list(stored) == [kid]
    assert is_sealed(stored[kid])


@pytest.mark.parametrize(
    ("secret", "message"),
    [(None, MISSING), (OTHER_KEK, WRONG)],
    ids=["missing-key", "wrong-key"],
)
async def test_startup_with_sealed_key_and_no_or_wrong_key_fails_clearly(
    db_url: str, fresh_keys: AsyncEngine, secret: str | None, message: str
) -> None:
    await ensure_signing_key(
        fresh_keys, "RS256", retire_after=RETIRE, cipher=PrivateKeyCipher(KEK)
    )
    application = create_app(make_settings(db_url, key_encryption_key=secret))
    with pytest.raises(KeyEncryptionError) as caught:
        async with application.router.lifespan_context(application):
            pass  # pragma: no cover - start-up must fail
    assert str(caught.value) == message


@pytest.fixture
def cli(
    db_url: str,
    fresh_keys: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """The CLI against the test database, starting with no signing keys."""
    return cli_runner(db_url, capsys, monkeypatch)


async def test_keys_ensure_with_key_encryption_key_seals_legacy_plaintext_rows(
    cli: Cli, fresh_keys: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy = await ensure_signing_key(fresh_keys, "RS256", retire_after=RETIRE)
    assert not is_sealed((await stored_private_keys(fresh_keys))[legacy])
    monkeypatch.setenv("OAUTH_KEY_ENCRYPTION_KEY", KEK)
    code, out, err = await cli("keys", "ensure", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "signing_kid": legacy,
        "ensured_kid": legacy,
        "encrypted": True,
        "resealed": 1,
    }
    assert is_sealed((await stored_private_keys(fresh_keys))[legacy])
    code, out, _ = await cli("keys", "ensure", "--json")
    assert (code, json.loads(out)["resealed"]) == (0, 0)


async def test_keys_ensure_without_key_encryption_key_creates_plaintext_key(
    cli: Cli, fresh_keys: AsyncEngine
) -> None:
    code, out, _ = await cli("keys", "ensure", "--json")
    assert code == 0
    result = json.loads(out)
    assert result | {"signing_kid": "k", "ensured_kid": "k"} == {
        "signing_kid": "k",
        "ensured_kid": "k",
        "encrypted": False,
        "resealed": 0,
    }
    assert result["signing_kid"] == result["ensured_kid"]
    stored = await stored_private_keys(fresh_keys)
    assert not is_sealed(stored[result["signing_kid"]])


@pytest.mark.parametrize(
    ("command", "secret", "message"),
    [
        (("keys", "ensure"), None, MISSING),
        (("keys", "ensure"), OTHER_KEK, WRONG),
        (("keys", "rotate"), OTHER_KEK, WRONG),
        (("serve",), OTHER_KEK, WRONG),
        (("keys", "ensure"), "bogus", None),
    ],
    ids=["ensure-missing", "ensure-wrong", "rotate-wrong", "serve-wrong", "malformed"],
)
async def test_keys_commands_with_sealed_keys_and_bad_key_exit_2_with_one_line(
    cli: Cli,
    fresh_keys: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
    secret: str | None,
    message: str | None,
) -> None:
    sealed_kid = await ensure_signing_key(
        fresh_keys, "RS256", retire_after=RETIRE, cipher=PrivateKeyCipher(KEK)
    )
    if secret is not None:
        monkeypatch.setenv("OAUTH_KEY_ENCRYPTION_KEY", secret)
    code, out, err = await cli(*command)
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1
    # A malformed key is refused with the settings, before any command looks at the database.
    expected = message or (
        "invalid setting OAUTH_KEY_ENCRYPTION_KEY: not a Fernet key (32 url-safe base64-encoded "
        'bytes; several are comma-separated); generate one with: python -c "from '
        'cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
    )
    assert lines[0] == f"error: {expected}"
    assert list(await stored_private_keys(fresh_keys)) == [sealed_kid]  # nothing added
