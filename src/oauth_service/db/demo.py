"""Idempotent demo data: one user and one client per grant, with credentials kept in a local file.

Secrets are stored hashed, so the plaintexts live in a git-ignored ``.oauth-demo.json`` (mode 0600) written on
first seeding and reused afterwards; every later run checks the file against the database and heals drift
(a missing user or client is created, a stale password or secret is replaced), so the printed commands work.
"""

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.crypto.tokens import verify_token_hash
from oauth_service.db import admin
from oauth_service.db.client_rules import normalize_email
from oauth_service.db.tables import ClientRow, UserRow

DEMO_FILE = Path(".oauth-demo.json")
DEMO_EMAIL = "demo@example.com"
DOCS_REDIRECT = "http://127.0.0.1:8000/docs/oauth2-redirect"
CALLBACK_REDIRECT = "http://127.0.0.1:8765/callback"


@dataclass(frozen=True, slots=True)
class DemoClient:
    """The registration of one demo client."""

    client_id: str
    name: str
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...] = ()
    is_public: bool = False


DEMO_CLIENTS: tuple[DemoClient, ...] = (
    DemoClient(
        "demo-service", "Demo service (client credentials)", ("client_credentials",)
    ),
    DemoClient("demo-password", "Demo password grant", ("password", "refresh_token")),
    DemoClient(
        "demo-web",
        "Demo web app (authorization code)",
        ("authorization_code", "refresh_token"),
        (DOCS_REDIRECT, CALLBACK_REDIRECT),
    ),
    DemoClient(
        "demo-spa",
        "Demo single-page app (code + PKCE)",
        ("authorization_code", "refresh_token"),
        (DOCS_REDIRECT,),
        is_public=True,
    ),
    DemoClient(
        "demo-implicit",
        "Demo implicit (legacy)",
        ("implicit",),
        (DOCS_REDIRECT,),
        is_public=True,
    ),
)


@dataclass(slots=True)
class DemoCredentials:
    """Plaintext demo credentials: the user's password and each confidential client's secret."""

    email: str = DEMO_EMAIL
    password: str = field(default="", repr=False)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


def load_credentials(path: Path = DEMO_FILE) -> DemoCredentials:
    """Read the credentials file; a missing or unreadable file yields empty credentials."""
    try:
        data: Any = json.loads(path.read_text("utf-8"))
        return DemoCredentials(
            email=str(data["email"]),
            password=str(data["password"]),
            secrets={str(k): str(v) for k, v in dict(data["secrets"]).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return DemoCredentials()


def save_credentials(credentials: DemoCredentials, path: Path = DEMO_FILE) -> None:
    """Write the credentials atomically, readable by the owner only (0600)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(credentials), handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


async def _ensure_user(
    session: AsyncSession, hasher: PasswordHasher, known: DemoCredentials
) -> str:
    row = await session.scalar(
        select(UserRow).where(
            col(UserRow.email_normalized) == normalize_email(DEMO_EMAIL)
        )
    )
    if (
        row is not None
        and known.password
        and (await hasher.verify(row.password_hash, known.password)).ok
    ):
        return known.password
    password = secrets.token_urlsafe(12)
    if row is None:
        await admin.create_user(
            session, email=DEMO_EMAIL, password=password, hasher=hasher
        )
    else:
        await admin.set_user_password(
            session, user_id=row.id, password=password, hasher=hasher
        )
    return password


async def _ensure_client(
    session: AsyncSession, spec: DemoClient, known_secret: str | None
) -> str | None:
    row = await session.get(ClientRow, spec.client_id)
    if row is None:
        _, secret = await admin.create_client(
            session,
            client_id=spec.client_id,
            name=spec.name,
            grant_types=spec.grant_types,
            redirect_uris=spec.redirect_uris,
            scopes=("read", "write"),
            is_public=spec.is_public,
            is_first_party=False,
        )
        return secret
    if row.is_public:
        return None
    if (
        known_secret
        and row.secret_hash
        and verify_token_hash(known_secret, row.secret_hash)
    ):
        return known_secret
    _, secret = await admin.rotate_client_secret(session, client_id=spec.client_id)
    return secret


async def seed_demo(
    session: AsyncSession, *, hasher: PasswordHasher, known: DemoCredentials
) -> DemoCredentials:
    """Create (or heal) the demo user and clients; return the credentials that now work.

    The caller commits, then saves the returned credentials.
    """
    password = await _ensure_user(session, hasher, known)
    client_secrets: dict[str, str] = {}
    for spec in DEMO_CLIENTS:
        secret = await _ensure_client(session, spec, known.secrets.get(spec.client_id))
        if secret is not None:
            client_secrets[spec.client_id] = secret
    return DemoCredentials(email=DEMO_EMAIL, password=password, secrets=client_secrets)
