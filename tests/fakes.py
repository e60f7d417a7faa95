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
from oauth_service.oauth.models import Client, User
from oauth_service.oauth.storage import (
    CodeRecord,
    NewRefreshToken,
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


class FakeUserStore:
    def __init__(self, users: Iterable[User] = ()) -> None:
        self.users = {u.id: u for u in users}
        self.releases = 0

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

    async def release(self) -> None:
        # Nothing is held in memory; counted so a grant's test can see when it let go.
        self.releases += 1


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

    def __init__(self, revoked: FakeRevokedTokenStore) -> None:
        self.tokens: dict[UUID, RefreshRecord] = {}
        self.revoked = revoked
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

    async def rotate(self, old_id: UUID, new: NewRefreshToken, at: datetime) -> bool:
        if not self._live(old_id):
            return False
        self.tokens[old_id] = dataclasses.replace(self.tokens[old_id], rotated_at=at)
        await self.save(new)
        return True

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
    ) -> None:
        self.codes: dict[str, CodeRecord] = {}
        self.revoked = revoked if revoked is not None else FakeRevokedTokenStore()
        self.refresh_tokens = (
            refresh_tokens
            if refresh_tokens is not None
            else FakeRefreshTokenStore(self.revoked)
        )

    async def save(self, code: CodeRecord) -> None:
        self.codes[code.code_hash] = code

    async def get(self, code_hash: str) -> CodeRecord | None:
        return self.codes.get(code_hash)

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
        code = self.codes.get(code_hash)
        if code is None or code.used_at is not None:
            return False
        if refresh is not None:
            await self.refresh_tokens.save(refresh)
        self.codes[code_hash] = dataclasses.replace(
            code,
            used_at=at,
            family_id=family_id,
            access_jti=access_jti,
            access_expires_at=access_expires_at,
        )
        return True

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
        self.refresh_tokens = FakeRefreshTokenStore(self.revoked_tokens)
        self.codes = FakeCodeStore(self.revoked_tokens, self.refresh_tokens)

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
        shared_keyset(),
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
