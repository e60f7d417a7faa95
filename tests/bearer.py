"""Access tokens for tests of protected routes, signed with the running app's keys (RFC 9068 claims)."""

import base64
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI

from oauth_service.oauth.ids import millis_of, time_ordered_uuid
from oauth_service.resource_server import AccessToken, TokenVerifier
from oauth_service.resource_server.fastapi import ResourceProtector
from oauth_service.runtime import Runtime
from tests.factories import make_client, make_user


def access_token(
    runtime: Runtime,
    *,
    subject: str,
    client_id: str | None = "app",
    scope: str = "read write",
    ttl: int = 600,
    jti: str | None = None,
    **overrides: Any,
) -> str:
    """Sign an access token the way the token endpoint does; ``overrides`` replace or drop (None) claims."""
    moment = runtime.clock()
    now = int(moment.timestamp())
    claims: dict[str, Any] = {
        "iss": runtime.settings.issuer,
        "aud": runtime.settings.resource_audience,
        "sub": subject,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
        "jti": jti or time_ordered_uuid(millis_of(moment)).hex,
    }
    claims.update(overrides)
    return runtime.keys.sign({k: v for k, v in claims.items() if v is not None})


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    """HTTP Basic client authentication (RFC 6749 §2.3.1)."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@dataclass(frozen=True)
class Issued:
    """Tokens from the token endpoint and the client that holds them."""

    client_id: str
    auth: dict[str, str]
    access_token: str
    refresh_token: str | None


async def password_tokens(
    http: httpx.AsyncClient,
    runtime: Runtime,
    *,
    client_id: str = "app",
    email: str = "alice@example.com",
    scope: str = "read write",
) -> Issued:
    """Register a confidential client and a user (when missing) and run the password grant."""
    known_user = await runtime.stores.users.get_by_email(email)
    password = "correct horse battery"
    if known_user is None:
        await make_user(runtime, email=email, password=password)
    _, secret = await make_client(
        runtime,
        client_id=client_id,
        grant_types=("password", "refresh_token", "client_credentials"),
    )
    assert secret is not None
    auth = basic(client_id, secret)
    form = {
        "grant_type": "password",
        "email": email,
        "password": password,
        "scope": scope,
    }
    response = await http.post("/oauth/token", data=form, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    return Issued(client_id, auth, body["access_token"], body.get("refresh_token"))


async def refresh(http: httpx.AsyncClient, issued: Issued) -> httpx.Response:
    """Run the refresh grant with the issued refresh token."""
    form = {"grant_type": "refresh_token", "refresh_token": issued.refresh_token or ""}
    return await http.post("/oauth/token", data=form, headers=issued.auth)


def notes_api(verifier: TokenVerifier) -> FastAPI:
    """The README's protected API on ``verifier``: ``GET /notes`` needs scope ``read``, answers ``{"owner": sub}``."""
    oauth = ResourceProtector(verifier)
    api = FastAPI()
    oauth.install(api)

    @api.get("/notes")
    async def notes(
        token: Annotated[AccessToken, Depends(oauth.require_scopes("read"))],
    ) -> dict[str, str]:
        return {"owner": token.subject}

    return api
