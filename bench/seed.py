"""Seed a fresh benchmark database: clients, users, and pools of single-use refresh tokens and codes.

Registration goes through ``oauth_service.db.admin`` (the code the CLI uses); the bulk rows (token pools and
the "cost as work grows" filler of refresh tokens and clients) go in with Postgres ``COPY``, which loads a
million rows in seconds. Each pool is written to a file, one ready-made request body per line, that the wrk
script hands out so that every request presents a token or code nobody used before.
"""

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import asyncpg  # type: ignore[import-untyped]

from oauth_service.crypto.jwt import KeySet
from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.db import admin
from oauth_service.db.engine import make_engine, make_sessionmaker
from oauth_service.db.keys import ensure_signing_key, load_keyset
from oauth_service.oauth.ids import time_ordered_uuid
from oauth_service.oauth.issuer import TokenIssuer
from oauth_service.oauth.models import Client
from oauth_service.settings import Settings

PASSWORD = "bench-password-123"
REDIRECT_URI = "https://bench.example/callback"
USERS = 8
_NOW = datetime.now(UTC)
USERINFO_SCOPE = "openid profile email"
OPENID_CODE_SCOPE = "openid read"
_COPY_BATCH = 50_000


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the scenarios need to build their requests."""

    cc_basic: str  # "Basic ..." header of the confidential client
    user_ids: tuple[str, ...]
    user_emails: tuple[str, ...]
    client_id: str


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def pg_dsn(settings: Settings) -> str:
    """The asyncpg DSN of the SQLAlchemy URL in ``settings``."""
    return settings.database_url.replace("postgresql+asyncpg://", "postgresql://")


async def seed_registrations(settings: Settings) -> Seeded:
    """Create the benchmark client (every grant) and users; make sure the signing key exists."""
    engine = make_engine(settings)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )
    try:
        retire_after = timedelta(seconds=settings.access_token_ttl + 60)
        await ensure_signing_key(
            engine, settings.signing_alg, retire_after=retire_after
        )
        async with make_sessionmaker(engine)() as session:
            client, secret = await admin.create_client(
                session,
                name="bench confidential client",
                client_id="bench-client",
                grant_types=[
                    "client_credentials",
                    "password",
                    "refresh_token",
                    "authorization_code",
                ],
                redirect_uris=[REDIRECT_URI],
                scopes=["read", "write", *USERINFO_SCOPE.split(" ")],
                is_first_party=True,
            )
            users = [
                await admin.create_user(
                    session,
                    email=f"bench{i}@example.com",
                    password=PASSWORD,
                    hasher=hasher,
                )
                for i in range(USERS)
            ]
            await session.commit()
    finally:
        await engine.dispose()
    assert secret is not None
    await _profiles(pg_dsn(settings), [u.id for u in users])
    return Seeded(
        cc_basic=_basic(client.client_id, secret),
        user_ids=tuple(u.id for u in users),
        user_emails=tuple(u.email for u in users),
        client_id=client.client_id,
    )


async def _profiles(dsn: str, user_ids: list[str]) -> None:
    """Give every user the standard claims UserInfo releases (OpenID Connect Core §5.1), each one set."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "UPDATE users SET name = $2, given_name = $3, family_name = $4, preferred_username = $5,"
            " picture = $6, locale = $7, zoneinfo = $8, email_verified = true WHERE id = $1",
            [
                (
                    user_id,
                    f"Bench User {i}",
                    "Bench",
                    f"User {i}",
                    f"bench{i}",
                    f"https://bench.example/avatars/{i}.png",
                    "en-GB",
                    "Europe/Paris",
                )
                for i, user_id in enumerate(user_ids)
            ],
        )
    finally:
        await conn.close()


async def load_keys(settings: Settings) -> KeySet:
    """The key set the server will sign with (to pre-issue access tokens)."""
    engine = make_engine(settings)
    try:
        return await load_keyset(engine)
    finally:
        await engine.dispose()


_FAMILY_SPREAD_MS = (
    30 * 86_400_000
)  # the default refresh_token_ttl: how far back live families began
_RECENT_MS = 3_600_000  # a pool token was issued by its family's last rotation, within the last hour


def _past_ids(*, recent: bool) -> tuple[object, object]:
    """A token's id and its family's, as the service makes them (UUIDv7), as if made in the past.

    Families began at random points of the last 30 days, so a rotation's family-index entry lands anywhere
    in that index. A pool token (``recent``), about to be refreshed by an active client, was issued within
    the last hour; a filler token at any time since its family began.
    """
    now = time.time_ns() // 1_000_000
    began = now - secrets.randbelow(_FAMILY_SPREAD_MS)
    since = max(began, now - _RECENT_MS) if recent else began
    issued = since + secrets.randbelow(now - since + 1)
    return time_ordered_uuid(issued), time_ordered_uuid(began)


def _refresh_rows(
    count: int, seeded: Seeded, *, raw_out: list[str] | None
) -> Iterator[tuple[object, ...]]:
    """Live refresh tokens: the pool's when ``raw_out`` collects their raw values, else filler."""
    end = _NOW + timedelta(days=30)
    for i in range(count):
        raw = secrets.token_urlsafe(32)
        if raw_out is not None:
            raw_out.append(raw)
        user = seeded.user_ids[i % len(seeded.user_ids)]
        token_id, family_id = _past_ids(recent=raw_out is not None)
        yield (
            token_id,
            hashlib.sha256(raw.encode()).hexdigest(),
            family_id,
            seeded.client_id,
            user,
            "read write",
            _NOW,
            _NOW,
            end,
            end,
        )


_REFRESH_COLUMNS = [
    "id",
    "token_hash",
    "family_id",
    "client_id",
    "user_id",
    "scope",
    "auth_time",
    "issued_at",
    "expires_at",
    "family_expires_at",
]


async def _copy(
    dsn: str, table: str, columns: list[str], rows: Iterator[tuple[object, ...]]
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        batch: list[tuple[object, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _COPY_BATCH:
                await conn.copy_records_to_table(table, records=batch, columns=columns)
                batch = []
        if batch:
            await conn.copy_records_to_table(table, records=batch, columns=columns)
        await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()


async def refresh_pool(dsn: str, seeded: Seeded, count: int, path: Path) -> None:
    """Store ``count`` live refresh tokens and write one request body per token to ``path``."""
    raws: list[str] = []
    await _copy(
        dsn,
        "refresh_tokens",
        _REFRESH_COLUMNS,
        _refresh_rows(count, seeded, raw_out=raws),
    )
    text = "".join(
        urlencode({"grant_type": "refresh_token", "refresh_token": raw}) + "\n"
        for raw in raws
    )
    await asyncio.to_thread(path.write_text, text)


async def refresh_filler(dsn: str, seeded: Seeded, count: int) -> None:
    """Store ``count`` more refresh tokens nobody will present (the "work grows" dimension)."""
    await _copy(
        dsn,
        "refresh_tokens",
        _REFRESH_COLUMNS,
        _refresh_rows(count, seeded, raw_out=None),
    )


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def code_pool(
    dsn: str, seeded: Seeded, count: int, path: Path, *, openid: bool = False
) -> None:
    """Store ``count`` unused PKCE (S256) authorization codes and write one redemption body per code.

    ``openid``: codes of an OpenID Connect sign-in (scope ``openid read``, the request's nonce and the browser
    session's sid), so each redemption's response carries an ID token too (OpenID Connect Core §3.1.3.3).
    """
    bodies: list[str] = []
    scope = OPENID_CODE_SCOPE if openid else "read write"

    def rows() -> Iterator[tuple[object, ...]]:
        expires = _NOW + timedelta(
            hours=2
        )  # seeded ahead of the run, so longer than a live code's
        for i in range(count):
            code, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
            bodies.append(
                urlencode(
                    {
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT_URI,
                        "code_verifier": verifier,
                    }
                )
                + "\n"
            )
            yield (
                hashlib.sha256(code.encode()).hexdigest(),
                seeded.client_id,
                seeded.user_ids[i % len(seeded.user_ids)],
                REDIRECT_URI,
                scope,
                _challenge(verifier),
                "S256",
                _NOW,
                _NOW,
                expires,
                secrets.token_urlsafe(16) if openid else None,  # nonce
                secrets.token_urlsafe(24) if openid else None,  # sid
            )

    columns = [
        "code_hash",
        "client_id",
        "user_id",
        "redirect_uri",
        "scope",
        "code_challenge",
        "code_challenge_method",
        "auth_time",
        "created_at",
        "expires_at",
        "nonce",
        "sid",
    ]
    await _copy(dsn, "authorization_codes", columns, rows())
    await asyncio.to_thread(path.write_text, "".join(bodies))


async def settle(dsn: str) -> None:
    """After a bulk load: vacuum and analyze the grown tables, then checkpoint, so neither runs mid-measurement."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE) refresh_tokens, clients")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def client_filler(dsn: str, count: int) -> None:
    """Register ``count`` more confidential clients (the "registered clients" dimension)."""

    def rows() -> Iterator[tuple[object, ...]]:
        for i in range(count):
            yield (
                f"filler-{i:07d}-{secrets.token_hex(4)}",
                hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
                f"filler {i}",
                False,
                "client_credentials",
                "[]",
                "read",
                "client_secret_basic",
                False,
                _NOW,
                _NOW,
            )

    columns = [
        "client_id",
        "secret_hash",
        "name",
        "is_public",
        "grant_types",
        "redirect_uris",
        "scopes",
        "token_endpoint_auth_method",
        "is_first_party",
        "created_at",
        "updated_at",
    ]
    await _copy(dsn, "clients", columns, rows())


def access_tokens(
    settings: Settings,
    keys: KeySet,
    seeded: Seeded,
    count: int,
    *,
    users: bool,
    scope: str = "read write",
) -> list[str]:
    """Pre-issue ``count`` access tokens (distinct ``jti``), for users or for the client itself."""
    issuer = TokenIssuer(
        lambda: keys,
        refresh_tokens=None,  # type: ignore[arg-type]  # only mint_access_token is used
        issuer=settings.issuer,
        audience=settings.resource_audience,
        access_ttl=timedelta(hours=1),
        refresh_ttl=timedelta(days=1),
        refresh_idle_ttl=timedelta(days=1),
    )
    client = Client(
        client_id=seeded.client_id,
        name="bench",
        is_public=False,
        grant_types=frozenset(),
        redirect_uris=(),
        scopes=frozenset({"read", "write", *USERINFO_SCOPE.split(" ")}),
    )
    granted = frozenset(scope.split(" "))
    return [
        issuer.mint_access_token(
            client,
            seeded.user_ids[i % len(seeded.user_ids)] if users else None,
            granted,
            _NOW if users else None,  # auth_time: when the user signed in
        ).token
        for i in range(count)
    ]


async def recreate_database(admin_dsn: str, name: str) -> None:
    """Drop and create the benchmark database (``admin_dsn`` points at any other database)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
