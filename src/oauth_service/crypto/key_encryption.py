"""Encryption of private signing keys at rest (Fernet: AES-128-CBC plus HMAC-SHA256, authenticated).

A sealed value is ``fernet:`` followed by a Fernet token, so rows written before encryption was configured
(plain PKCS#8 PEM) are told apart and still load. The key-encryption key comes from settings as one or more
comma-separated Fernet keys: the first encrypts, every one decrypts, so the key-encryption key itself can be
rotated (add the new key first, re-seal with ``oauth-service keys ensure``, then drop the old one). Failures raise
``KeyEncryptionError`` with a one-line message fit for an operator; no key material ever appears in it.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED_PREFIX = "fernet:"
SETTING = "OAUTH_KEY_ENCRYPTION_KEY"
# What an operator can paste to make a key (``generate_encryption_key`` in a shell command).
GENERATE_COMMAND = (
    'python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class KeyEncryptionError(Exception):
    """A private key cannot be sealed or opened with the configured key-encryption key."""


def generate_encryption_key() -> str:
    """Return a fresh key-encryption key (URL-safe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode("ascii")


def is_fernet_key(key: str) -> bool:
    """Whether ``key`` is one valid Fernet key (what ``OAUTH_KEY_ENCRYPTION_KEY`` lists, comma-separated)."""
    try:
        Fernet(key.encode("ascii"))
    except ValueError:  # bad base64 or length; UnicodeEncodeError is a ValueError too
        return False
    return True


def is_sealed(stored: str) -> bool:
    """Whether ``stored`` is an encrypted private key (as opposed to a legacy plaintext PEM)."""
    return stored.startswith(SEALED_PREFIX)


def _parse(secret: str) -> list[Fernet]:
    keys = [part.strip() for part in secret.split(",") if part.strip()]
    if not keys:
        raise KeyEncryptionError(f"{SETTING} is empty")
    try:
        return [Fernet(key.encode("ascii")) for key in keys]
    except (ValueError, UnicodeEncodeError):
        raise KeyEncryptionError(
            f"{SETTING} must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated"
        ) from None


class PrivateKeyCipher:
    """Seals and opens private-key PEMs; with no key configured it stores plaintext and refuses sealed rows."""

    __slots__ = ("_fernet", "_primary")

    def __init__(self, secret: str | None) -> None:
        keys = _parse(secret) if secret else []
        self._primary = keys[0] if keys else None
        self._fernet = MultiFernet(keys) if keys else None

    def __repr__(self) -> str:
        return f"PrivateKeyCipher(encrypts={self.encrypts})"

    @property
    def encrypts(self) -> bool:
        """Whether new keys are stored encrypted."""
        return self._fernet is not None

    def seal(self, pem: str) -> str:
        """Return what to store for ``pem``: sealed when a key is configured, else the PEM itself."""
        if self._fernet is None:
            return pem
        return SEALED_PREFIX + self._fernet.encrypt(pem.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """Return the PEM of a stored private key (plaintext rows pass through).

        Raises:
            KeyEncryptionError: the row is sealed and no key, or none of the configured keys, opens it.
        """
        if not is_sealed(stored):
            return stored
        if self._fernet is None:
            raise KeyEncryptionError(
                f"signing keys in the database are encrypted but {SETTING} is not set"
            )
        try:
            token = stored.removeprefix(SEALED_PREFIX).encode("ascii")
            return self._fernet.decrypt(token).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise KeyEncryptionError(
                f"{SETTING} does not decrypt the signing keys in the database (wrong key?)"
            ) from None

    def reseal(self, stored: str) -> str | None:
        """Return ``stored`` sealed under the primary key, or None when it already is (or nothing encrypts).

        Plaintext rows get encrypted; rows sealed under an older key-encryption key get re-encrypted.
        """
        if self._primary is None:
            return None
        pem = self.open(stored)
        if is_sealed(stored):
            try:
                self._primary.decrypt(
                    stored.removeprefix(SEALED_PREFIX).encode("ascii")
                )
            except InvalidToken:
                return self.seal(pem)
            return None
        return self.seal(pem)
