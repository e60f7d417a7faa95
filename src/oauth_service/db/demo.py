"""Idempotent demo data: one user and one client per grant, with credentials kept in a local file.

Secrets are stored hashed, so the plaintexts live in a git-ignored ``.oauth-demo.json`` (mode 0600), one entry
per database, written on first seeding and reused afterwards. Every later run checks the entry against the
database and heals drift (a missing user or client is created, a stale password or secret is replaced, redirect
URIs follow the issuer), and says what it changed, so the printed commands work and nothing changes silently.
"""

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from oauth_service.crypto.passwords import PasswordHasher
from oauth_service.crypto.tokens import verify_token_hash
from oauth_service.db import admin
from oauth_service.db.change_feed import ClientChanged, publish
from oauth_service.db.mapping import join_set, split_set
from oauth_service.db.tables import ClientRow, UserRow
from oauth_service.oauth.registration import normalize_email

DEMO_FILE = Path(".oauth-demo.json")
DEMO_EMAIL = "demo@example.com"
# The demo user's standard claims (OpenID Connect Core §5.1), released by UserInfo and ID tokens per scope.
DEMO_PROFILE: dict[str, str | bool | None] = {
    "name": "Demo User",
    "given_name": "Demo",
    "family_name": "User",
    "preferred_username": "demo",
    "locale": "en",
    "zoneinfo": "UTC",
    "email_verified": True,
}
API_SCOPES = ("read", "write")
# What the browser-flow clients may also ask for: sign-in with OpenID Connect, and refresh tokens that outlive
# the browser session (offline_access).
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
# A loopback IP literal without a port: any port is accepted (RFC 8252 §7.3), as `perform` listens on a free one.
CALLBACK_REDIRECT = "http://127.0.0.1/callback"


def docs_redirect(issuer: str) -> str:
    """Swagger UI's redirect page on this server, wherever it runs (host and port come from the issuer)."""
    return f"{issuer}/docs/oauth2-redirect"


@dataclass(frozen=True, slots=True)
class DemoClient:
    """The registration of one demo client."""

    client_id: str
    name: str
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...] = ()
    is_public: bool = False
    scopes: tuple[str, ...] = API_SCOPES


def demo_clients(issuer: str) -> tuple[DemoClient, ...]:
    """The demo registrations for a server whose issuer is ``issuer``."""
    docs = docs_redirect(issuer)
    return (
        DemoClient(
            "demo-service", "Demo service (client credentials)", ("client_credentials",)
        ),
        DemoClient(
            "demo-password", "Demo password grant", ("password", "refresh_token")
        ),
        DemoClient(
            "demo-web",
            "Demo web app (authorization code)",
            ("authorization_code", "refresh_token"),
            (docs, CALLBACK_REDIRECT),
            scopes=API_SCOPES + OIDC_SCOPES,
        ),
        DemoClient(
            "demo-spa",
            "Demo single-page app (code + PKCE)",
            ("authorization_code", "refresh_token"),
            (docs, CALLBACK_REDIRECT),
            is_public=True,
            scopes=API_SCOPES + OIDC_SCOPES,
        ),
        DemoClient(
            "demo-implicit",
            "Demo implicit (legacy)",
            ("implicit",),
            (docs,),
            is_public=True,
            scopes=API_SCOPES + OIDC_SCOPES,
        ),
    )


@dataclass(slots=True)
class DemoCredentials:
    """Plaintext demo credentials: the user's password and each confidential client's secret."""

    email: str = DEMO_EMAIL
    password: str = field(default="", repr=False)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    # What this seeding changed in an existing database (a reset password or secret, moved redirect URIs).
    changes: list[str] = field(default_factory=list)


def database_key(database_url: str) -> str:
    """The credentials file's key for a database: its URL without a password."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data: Any = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    databases = data.get("databases") if isinstance(data, dict) else None
    return databases if isinstance(databases, dict) else {}


def load_credentials(database: str, path: Path = DEMO_FILE) -> DemoCredentials:
    """The credentials kept for ``database`` (a ``database_key``); none kept yields empty credentials."""
    try:
        entry: Any = _read_file(path)[database]
        return DemoCredentials(
            email=str(entry["email"]),
            password=str(entry["password"]),
            secrets={str(k): str(v) for k, v in dict(entry["secrets"]).items()},
        )
    except (KeyError, ValueError, TypeError):
        return DemoCredentials()


def save_credentials(
    credentials: DemoCredentials, database: str, path: Path = DEMO_FILE
) -> None:
    """Keep ``database``'s credentials beside the other databases', atomically and owner-only (0600)."""
    databases = _read_file(path)
    databases[database] = {
        "email": credentials.email,
        "password": credentials.password,
        "secrets": credentials.secrets,
    }
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"databases": databases}, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


async def _ensure_user(
    session: AsyncSession,
    hasher: PasswordHasher,
    known: DemoCredentials,
    changes: list[str],
) -> str:
    row = await session.scalar(
        select(UserRow).where(
            col(UserRow.email_normalized) == normalize_email(DEMO_EMAIL)
        )
    )
    if row is not None and row.name is None:
        # Seeded before users had standard claims: filled in once, never over an operator's own values.
        await admin.update_user(session, user_id=row.id, changes=DEMO_PROFILE)
        changes.append(f"filled in the OpenID Connect claims of {DEMO_EMAIL}")
    if (
        row is not None
        and known.password
        and (await hasher.verify(row.password_hash, known.password)).ok
    ):
        return known.password
    password = secrets.token_urlsafe(12)
    if row is None:
        await admin.create_user(
            session,
            email=DEMO_EMAIL,
            password=password,
            hasher=hasher,
            profile=DEMO_PROFILE,
        )
    else:
        await admin.set_user_password(
            session, user_id=row.id, password=password, hasher=hasher
        )
        changes.append(f"reset the password of {DEMO_EMAIL} (not the one kept)")
    return password


async def _ensure_client(
    session: AsyncSession,
    spec: DemoClient,
    known_secret: str | None,
    changes: list[str],
) -> str | None:
    row = await session.get(ClientRow, spec.client_id)
    created = row is None
    secret: str | None = None
    if row is None:
        _, secret = await admin.create_client(
            session,
            client_id=spec.client_id,
            name=spec.name,
            grant_types=spec.grant_types,
            # Registered through the rules with the loopback URI; the issuer's own are set below.
            redirect_uris=(CALLBACK_REDIRECT,) if spec.redirect_uris else (),
            scopes=spec.scopes,
            is_public=spec.is_public,
            is_first_party=False,
        )
        row = await session.get(ClientRow, spec.client_id)  # the instance just added
        if row is None:
            raise RuntimeError(f"demo client {spec.client_id} vanished")
    elif not row.is_public:
        secret = known_secret
        if not (
            secret and row.secret_hash and verify_token_hash(secret, row.secret_hash)
        ):
            _, secret = await admin.rotate_client_secret(
                session, client_id=spec.client_id
            )
            changes.append(
                f"issued a new secret for {spec.client_id} (not the one kept)"
            )
    missing = set(spec.scopes) - set(split_set(row.scopes))
    if missing:
        # Seeded before the OpenID Connect scopes existed: added, never taken away.
        row.scopes = join_set({*split_set(row.scopes), *missing})
        await publish(session, ClientChanged(spec.client_id))
        if not created:
            changes.append(
                f"added the scopes {' '.join(sorted(missing))} to {spec.client_id}"
            )
    if row.redirect_uris != list(spec.redirect_uris):
        # The docs redirect comes from the issuer, operator configuration trusted as is (plain http on a
        # development host too), as for the /docs client: it moves with the server's host and port.
        row.redirect_uris = list(spec.redirect_uris)
        await publish(
            session, ClientChanged(spec.client_id)
        )  # running servers drop their cached copy
        if not created:
            changes.append(
                f"set the redirect URIs of {spec.client_id} to {' '.join(spec.redirect_uris)}"
            )
    return secret


async def seed_demo(
    session: AsyncSession,
    *,
    hasher: PasswordHasher,
    known: DemoCredentials,
    issuer: str,
) -> DemoCredentials:
    """Create (or heal) the demo user and clients for ``issuer``; return the credentials that now work.

    The result's ``changes`` say what was reset in an existing database. The caller commits, then saves the
    returned credentials.
    """
    changes: list[str] = []
    password = await _ensure_user(session, hasher, known, changes)
    client_secrets: dict[str, str] = {}
    for spec in demo_clients(issuer):
        known_secret = known.secrets.get(spec.client_id)
        secret = await _ensure_client(session, spec, known_secret, changes)
        if secret is not None:
            client_secrets[spec.client_id] = secret
    return DemoCredentials(
        email=DEMO_EMAIL, password=password, secrets=client_secrets, changes=changes
    )
