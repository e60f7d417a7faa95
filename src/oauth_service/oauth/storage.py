"""Storage protocols the protocol core depends on (implemented in ``oauth_service.db.stores``).

Every token, code and secret is looked up by its hash (``crypto.tokens.token_hash``); raw values are never stored.
Single use and rotation are decided by conditional updates, so two concurrent requests cannot both win.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from oauth_service.oauth.models import Client, User


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A stored authorization code (RFC 6749 §4.1.2), bound to everything it was issued for."""

    code_hash: str = field(repr=False)
    client_id: str
    user_id: str
    redirect_uri: str | None
    scope: frozenset[str]
    auth_time: datetime
    expires_at: datetime
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    used_at: datetime | None = None
    family_id: UUID | None = None
    access_jti: str | None = None
    access_expires_at: datetime | None = None
    # The code's user, when the store read it in the same query (one round trip less per redemption); None
    # when not loaded, and then the grant reads the user itself.
    user: User | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh token: one link in a rotation family (RFC 9700 §4.14.2)."""

    id: UUID
    token_hash: str = field(repr=False)
    family_id: UUID
    parent_id: UUID | None
    client_id: str
    user_id: str | None
    scope: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    family_expires_at: datetime
    auth_time: datetime | None = None
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    access_jti: str | None = None
    access_expires_at: datetime | None = None
    # The token's user, when the store read it in the same query (one round trip less per refresh); None when
    # not loaded, and then the grant reads the user itself.
    user: User | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class NewRefreshToken:
    """A refresh token about to be stored (hash only)."""

    id: UUID
    token_hash: str = field(repr=False)
    family_id: UUID
    parent_id: UUID | None
    client_id: str
    user_id: str | None
    scope: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    family_expires_at: datetime
    auth_time: datetime | None
    access_jti: str
    access_expires_at: datetime


class ClientStore(Protocol):
    """Registered clients."""

    async def get(self, client_id: str) -> Client | None:
        """Return the client, or None."""
        ...


class UserStore(Protocol):
    """Resource owners."""

    async def get(self, user_id: str) -> User | None:
        """Return the user by id, or None."""
        ...

    async def get_by_email(self, email: str) -> User | None:
        """Return the user by email (case-insensitive), or None."""
        ...

    async def update_password_hash(
        self, user_id: str, password_hash: str, *, replacing: str
    ) -> None:
        """Store a rehashed password (argon2 parameters changed) if the stored hash is still ``replacing``.

        ``replacing`` is the hash the password was verified against: a password change committed meanwhile
        is kept, not overwritten by the old password's new hash.
        """
        ...

    async def release(self) -> None:
        """Give back the connection held for reads before a long wait; nothing was written in this unit of work.

        Called between reading a user and checking the password (argon2 queues behind a few hashes at a time),
        so a login storm does not hold every pooled connection while it only waits for the CPU. Later calls
        check a connection out again. A store whose unit of work did write keeps its connection: ending the
        transaction would commit or drop those writes early.
        """
        ...


class ScopeStore(Protocol):
    """Known scopes and their human descriptions."""

    async def all(self) -> dict[str, str]:
        """Return every scope name mapped to its description."""
        ...


class AuthorizationCodeStore(Protocol):
    """Authorization codes, stored hashed."""

    async def save(self, code: CodeRecord) -> None:
        """Store a new code."""
        ...

    async def get(self, code_hash: str) -> CodeRecord | None:
        """Return the code by hash, used or not."""
        ...

    async def consume(
        self,
        code_hash: str,
        at: datetime,
        *,
        family_id: UUID,
        access_jti: str,
        access_expires_at: datetime,
        refresh: NewRefreshToken | None = None,
    ) -> bool:
        """Mark the code used, recording what it issued, and store ``refresh`` with it, all or nothing.

        False (and nothing stored) when the code was already used.
        """
        ...

    async def revoke_issued(self, code_hash: str, at: datetime) -> None:
        """Put the access token a redeemed code issued on the revocation list (code replay, RFC 6749 §4.1.2).

        Commits on its own connection: the revocation must survive the error response that follows.
        """
        ...


class RefreshTokenStore(Protocol):
    """Refresh tokens, stored hashed, grouped in rotation families."""

    async def save(self, token: NewRefreshToken) -> None:
        """Store a new refresh token."""
        ...

    async def get(self, token_hash: str) -> RefreshRecord | None:
        """Return the token by hash, whatever its state."""
        ...

    async def rotate(self, old_id: UUID, new: NewRefreshToken, at: datetime) -> bool:
        """Atomically mark ``old_id`` rotated and insert ``new``; False when it was already rotated or revoked."""
        ...

    async def get_successor(self, parent_id: UUID) -> RefreshRecord | None:
        """Return the newest token rotated from ``parent_id``, or None (grace-window retries)."""
        ...

    async def replace_successor(
        self, successor_id: UUID, new: NewRefreshToken, at: datetime
    ) -> bool:
        """Atomically revoke an unused successor and insert ``new`` in its place (grace-window retry).

        False when the successor was already used or revoked.
        """
        ...

    async def revoke_family(self, family_id: UUID, at: datetime) -> None:
        """Revoke every token of the family and the access tokens issued from it.

        Commits on its own connection: the revocation must survive the error response that follows.
        """
        ...


class RevokedTokenStore(Protocol):
    """The access-token revocation list (by ``jti``), kept until each token would have expired."""

    async def add(self, jti: str, expires_at: datetime) -> None:
        """Put a ``jti`` on the list."""
        ...

    async def contains(self, jti: str) -> bool:
        """Return whether the ``jti`` is revoked."""
        ...


@dataclass(frozen=True, slots=True)
class Stores:
    """The storage collaborators of one request, bound to its database session."""

    clients: ClientStore
    users: UserStore
    scopes: ScopeStore
    refresh_tokens: RefreshTokenStore
    revoked_tokens: RevokedTokenStore
    # Set by the authorization-code feature; None where no code store is wired.
    codes: AuthorizationCodeStore | None = None
