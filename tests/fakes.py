"""In-memory implementations of every ``oauth.storage`` Protocol, plus a settable clock, for unit tests."""

import dataclasses
import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.crypto.tokens import token_hash
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client, User, UserProfile
from oauth_service.oauth.storage import (
    CodeClaim,
    CodeRecord,
    NewRefreshToken,
    RefreshClaim,
    RefreshRecord,
    Stores,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ISSUER = "http://oauth.test"
CLIENT_SECRET = "s3cret-for-tests"


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeClientStore:
    def __init__(self, clients: Iterable[Client] = ()) -> None:
        self.clients = {c.client_id: c for c in clients}

    async def get(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    async def reload(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)


class FakeUserStore:
    def __init__(
        self, users: Iterable[User] = (), profiles: Iterable[UserProfile] = ()
    ) -> None:
        self.users = {u.id: u for u in users}
        # Standard claims by user id; a user without one has only ``sub`` and ``email``.
        self.profiles = {p.subject: p for p in profiles}

    async def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    async def update_password_hash(
        self, user_id: str, password_hash: str, *, replacing: str
    ) -> None:
        if self.users[user_id].password_hash != replacing:
            return
        self.users[user_id] = dataclasses.replace(
            self.users[user_id], password_hash=password_hash
        )

    async def profile(self, user_id: str) -> UserProfile | None:
        user = self.users.get(user_id)
        if user is None or not user.is_active:
            return None
        return self.profiles.get(
            user_id, UserProfile(subject=user.id, email=user.email)
        )


class FakeScopeStore:
    def __init__(self, scopes: dict[str, str] | None = None) -> None:
        self.scopes = (
            scopes if scopes is not None else {"read": "", "write": "", "admin": ""}
        )

    async def all(self) -> dict[str, str]:
        return dict(self.scopes)


class FakeRevokedTokenStore:
    def __init__(self) -> None:
        self.revoked: dict[str, datetime] = {}

    async def add(self, jti: str, expires_at: datetime) -> None:
        self.revoked.setdefault(jti, expires_at)

    async def contains(self, jti: str) -> bool:
        return jti in self.revoked


def _record(token: NewRefreshToken) -> RefreshRecord:
    fields = {
        f.name: getattr(token, f.name) for f in dataclasses.fields(NewRefreshToken)
    }
    return RefreshRecord(**fields)


class FakeRefreshTokenStore:
    """Refresh tokens keyed by id; ``revoke_family`` also feeds the revocation list, as the SQL store does."""

    def __init__(
        self, revoked: FakeRevokedTokenStore, users: FakeUserStore | None = None
    ) -> None:
        self.tokens: dict[UUID, RefreshRecord] = {}
        self.revoked = revoked
        self.users = users if users is not None else FakeUserStore()
        self.revoked_families: list[UUID] = []

    async def save(self, token: NewRefreshToken) -> None:
        self.tokens[token.id] = _record(token)

    async def get(self, token_hash: str) -> RefreshRecord | None:
        return next(
            (t for t in self.tokens.values() if t.token_hash == token_hash), None
        )

    async def get_successor(self, parent_id: UUID) -> RefreshRecord | None:
        children = [t for t in self.tokens.values() if t.parent_id == parent_id]
        return max(children, key=lambda t: t.issued_at, default=None)

    def _live(self, token_id: UUID) -> bool:
        token = self.tokens.get(token_id)
        return (
            token is not None and token.rotated_at is None and token.revoked_at is None
        )

    async def rotate(self, claim: RefreshClaim) -> RefreshRecord | None:
        """``oauth.storage.RefreshClaim``'s contract, checked the way the SQL stores check it."""
        old = await self.get(claim.token_hash)
        at = claim.at
        if old is None or old.client_id != claim.client_id or not self._live(old.id):
            return None
        if at >= old.expires_at or at >= old.family_expires_at:
            return None
        user = self.users.users.get(old.user_id) if old.user_id else None
        if old.user_id is not None and (user is None or not user.is_active):
            return None
        if not claim.required_scope <= old.scope:
            return None
        if claim.requires_admin and user is not None and not user.is_admin:
            return None
        self.tokens[old.id] = dataclasses.replace(old, rotated_at=at)
        successor = claim.successor
        self.tokens[successor.id] = dataclasses.replace(
            old,
            id=successor.id,
            token_hash=successor.token_hash,
            parent_id=old.id,
            issued_at=at,
            expires_at=min(successor.idle_until, old.family_expires_at),
            rotated_at=None,
            access_jti=claim.access.jti,
            access_expires_at=claim.access.expires_at,
        )
        return dataclasses.replace(old, rotated_at=at, user=user)

    async def replace_successor(
        self, successor_id: UUID, new: NewRefreshToken, at: datetime
    ) -> bool:
        if not self._live(successor_id):
            return False
        old = dataclasses.replace(self.tokens[successor_id], revoked_at=at)
        self.tokens[successor_id] = old
        if old.access_jti and old.access_expires_at and old.access_expires_at > at:
            await self.revoked.add(old.access_jti, old.access_expires_at)
        await self.save(new)
        return True

    async def revoke_family(self, family_id: UUID, at: datetime) -> None:
        self.revoked_families.append(family_id)
        for token_id, token in list(self.tokens.items()):
            if token.family_id != family_id:
                continue
            if token.revoked_at is None:
                self.tokens[token_id] = dataclasses.replace(token, revoked_at=at)
            if (
                token.access_jti
                and token.access_expires_at
                and token.access_expires_at > at
            ):
                await self.revoked.add(token.access_jti, token.access_expires_at)


class FakeCodeStore:
    """Codes by hash; ``consume`` stores the redemption's refresh token in ``refresh_tokens``, as the SQL store does."""

    def __init__(
        self,
        revoked: FakeRevokedTokenStore | None = None,
        refresh_tokens: FakeRefreshTokenStore | None = None,
        users: FakeUserStore | None = None,
    ) -> None:
        self.codes: dict[str, CodeRecord] = {}
        self.revoked = revoked if revoked is not None else FakeRevokedTokenStore()
        self.users = users if users is not None else FakeUserStore()
        self.refresh_tokens = (
            refresh_tokens
            if refresh_tokens is not None
            else FakeRefreshTokenStore(self.revoked, self.users)
        )

    async def save(self, code: CodeRecord) -> None:
        self.codes[code.code_hash] = code

    async def get(self, code_hash: str) -> CodeRecord | None:
        return self.codes.get(code_hash)

    async def redeem(self, claim: CodeClaim) -> CodeRecord | None:
        """``oauth.storage.CodeClaim``'s contract, checked the way the SQL stores check it."""
        code = self.codes.get(claim.code_hash)
        at = claim.at
        if code is None or code.client_id != claim.client_id or code.used_at:
            return None
        user = self.users.users.get(code.user_id)
        if code.expires_at <= at or user is None or not user.is_active:
            return None
        if code.redirect_uri is None:
            if not claim.redirect_uri_registered:
                return None
        elif code.redirect_uri != claim.redirect_uri:
            return None
        method, challenge = code.code_challenge_method, code.code_challenge
        proven = (
            (method == "S256" and challenge == claim.s256_challenge)
            or (method == "plain" and challenge == claim.plain_challenge)
            or (
                challenge is None
                and not claim.verifier_sent
                and not claim.public_client
            )
        )
        if not proven:
            return None
        if claim.refresh is not None:
            refresh = claim.refresh
            await self.refresh_tokens.save(
                NewRefreshToken(
                    id=refresh.id,
                    token_hash=refresh.token_hash,
                    family_id=claim.family_id,
                    parent_id=None,
                    client_id=code.client_id,
                    user_id=code.user_id,
                    scope=code.scope,
                    issued_at=at,
                    expires_at=min(refresh.idle_until, claim.family_expires_at),
                    family_expires_at=claim.family_expires_at,
                    auth_time=code.auth_time,
                    access_jti=claim.access.jti,
                    access_expires_at=claim.access.expires_at,
                )
            )
        self.codes[claim.code_hash] = dataclasses.replace(
            code,
            used_at=at,
            family_id=claim.family_id,
            access_jti=claim.access.jti,
            access_expires_at=claim.access.expires_at,
        )
        return dataclasses.replace(self.codes[claim.code_hash], user=user)

    async def revoke_issued(self, code_hash: str, at: datetime) -> None:
        code = self.codes.get(code_hash)
        if (
            code
            and code.access_jti
            and code.access_expires_at
            and code.access_expires_at > at
        ):
            await self.revoked.add(code.access_jti, code.access_expires_at)


@dataclasses.dataclass
class FakeStores:
    """Every fake store, typed concretely so tests can inspect them; ``.bundle()`` gives ``Stores``."""

    clients: FakeClientStore = dataclasses.field(default_factory=FakeClientStore)
    users: FakeUserStore = dataclasses.field(default_factory=FakeUserStore)
    scopes: FakeScopeStore = dataclasses.field(default_factory=FakeScopeStore)
    revoked_tokens: FakeRevokedTokenStore = dataclasses.field(
        default_factory=FakeRevokedTokenStore
    )
    codes: FakeCodeStore = dataclasses.field(init=False)
    refresh_tokens: FakeRefreshTokenStore = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.refresh_tokens = FakeRefreshTokenStore(self.revoked_tokens, self.users)
        self.codes = FakeCodeStore(self.revoked_tokens, self.refresh_tokens, self.users)

    def bundle(self) -> Stores:
        return Stores(
            clients=self.clients,
            users=self.users,
            scopes=self.scopes,
            refresh_tokens=self.refresh_tokens,
            revoked_tokens=self.revoked_tokens,
            codes=self.codes,
        )


@functools.cache
def shared_keyset() -> KeySet:
    """One RSA key for the whole test run (key generation is slow)."""
    kid, pem, _ = generate_key("RS256")
    return KeySet(SigningKey.from_pem(kid, "RS256", pem))


@functools.cache
def fast_hasher() -> PasswordHasher:
    """argon2id with tiny parameters: unit tests check logic, not cost."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def make_issuer(stores: FakeStores, clock: FixedClock) -> TokenIssuer:
    """A ``TokenIssuer`` over the fakes: 10 min access, 30 day family, 14 day idle."""
    return TokenIssuer(
        shared_keyset,
        stores.refresh_tokens,
        issuer=ISSUER,
        audience=ISSUER,
        access_ttl=timedelta(minutes=10),
        refresh_ttl=timedelta(days=30),
        refresh_idle_ttl=timedelta(days=14),
        clock=clock,
    )


def confidential_client(
    client_id: str = "conf",
    *,
    grant_types: Iterable[str] = ("client_credentials", "password", "refresh_token"),
    scopes: Iterable[str] = ("read", "write", "admin"),
) -> Client:
    """A confidential client whose secret is ``CLIENT_SECRET``."""
    return Client(
        client_id=client_id,
        name=client_id,
        is_public=False,
        grant_types=frozenset(grant_types),
        redirect_uris=(),
        scopes=frozenset(scopes),
        secret_hash=token_hash(CLIENT_SECRET),
    )


def public_client(
    client_id: str = "spa",
    *,
    grant_types: Iterable[str] = ("password", "refresh_token"),
    scopes: Iterable[str] = ("read", "write"),
) -> Client:
    """A public client (no secret)."""
    return Client(
        client_id=client_id,
        name=client_id,
        is_public=True,
        grant_types=frozenset(grant_types),
        redirect_uris=(),
        scopes=frozenset(scopes),
        token_endpoint_auth_method="none",
    )
