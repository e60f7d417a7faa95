"""``oauth-service demo``: seed the demo user and clients, then print ready-to-paste commands for each grant.

The commands follow RFC 6749 §4.1-§4.4 and §6, with PKCE (RFC 7636) on the authorization-code flows.
"""

import base64
import hashlib
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import typer

from oauth_service.cli.common import (
    Context,
    emit_json,
    run_in_transaction,
    settings_or_exit,
)
from oauth_service.db.demo import (
    CALLBACK_REDIRECT,
    DEMO_CLIENTS,
    DEMO_FILE,
    DOCS_REDIRECT,
    DemoCredentials,
    load_credentials,
    save_credentials,
    seed_demo,
)
from oauth_service.settings import Settings

__all__ = ["demo", "demo_commands", "seed_and_report"]


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _authorize_url(issuer: str, **params: str) -> str:
    return f"{issuer}/oauth/authorize?{urlencode(params, quote_via=quote)}"


def demo_commands(issuer: str, creds: DemoCredentials) -> dict[str, str]:
    """Build one ready-to-paste command (or URL) per step of each grant."""
    token = f"{issuer}/oauth/token"
    sec = creds.secrets
    verifier, challenge = _pkce_pair()
    cb, docs = quote(CALLBACK_REDIRECT, safe=""), quote(DOCS_REDIRECT, safe="")
    code_params = {"response_type": "code", "scope": "read", "state": "demo"}
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    return {
        "client_credentials": f"curl -u demo-service:{sec.get('demo-service', '')} -d 'grant_type=client_credentials&scope=read' {token}",
        "password": f"curl -u demo-password:{sec.get('demo-password', '')} -d 'grant_type=password&email={quote(creds.email)}&password={quote(creds.password)}&scope=read+write' {token}",
        "refresh_token": f"curl -u demo-password:{sec.get('demo-password', '')} -d 'grant_type=refresh_token&refresh_token=REFRESH_TOKEN' {token}",
        "authorization_code_open": _authorize_url(
            issuer,
            client_id="demo-web",
            redirect_uri=CALLBACK_REDIRECT,
            **code_params,
            **pkce,
        ),
        "authorization_code_exchange": f"curl -u demo-web:{sec.get('demo-web', '')} -d 'grant_type=authorization_code&code=CODE&redirect_uri={cb}&code_verifier={verifier}' {token}",
        "pkce_public_open": _authorize_url(
            issuer,
            client_id="demo-spa",
            redirect_uri=DOCS_REDIRECT,
            **code_params,
            **pkce,
        ),
        "pkce_public_exchange": f"curl -d 'grant_type=authorization_code&client_id=demo-spa&code=CODE&redirect_uri={docs}&code_verifier={verifier}' {token}",
        "implicit_open": _authorize_url(
            issuer,
            response_type="token",
            client_id="demo-implicit",
            redirect_uri=DOCS_REDIRECT,
            scope="read",
            state="demo",
        ),
        "call_api": f"curl -H 'Authorization: Bearer ACCESS_TOKEN' {issuer}/api/v1/me",
    }


def _print_report(
    issuer: str, creds: DemoCredentials, path: Path, cmds: dict[str, str]
) -> None:
    lines = [
        f"Demo data ready (credentials kept in {path}, mode 0600).",
        f"  API docs:  {issuer}/docs",
        f"  Demo user: {creds.email} / {creds.password}",
        "",
        "# Client credentials (demo-service)",
        cmds["client_credentials"],
        "# Password grant (demo-password), then refresh with the refresh_token it returned",
        cmds["password"],
        cmds["refresh_token"],
        "# Authorization code + PKCE (demo-web, confidential): open, sign in, approve, copy ?code= from the address bar",
        cmds["authorization_code_open"],
        cmds["authorization_code_exchange"],
        "# Authorization code + PKCE (demo-spa, public: no secret)",
        cmds["pkce_public_open"],
        cmds["pkce_public_exchange"],
        "# Implicit (demo-implicit, legacy): the token comes back in the URL fragment",
        cmds["implicit_open"],
        "# Call the sample protected API",
        cmds["call_api"],
    ]
    typer.echo("\n".join(lines))


def seed_and_report(
    settings: Settings, *, as_json: bool, path: Path = DEMO_FILE
) -> None:
    """Seed (idempotently), save the working credentials, and print how to use them."""
    known = load_credentials(path)

    async def work(ctx: Context) -> DemoCredentials:
        return await seed_demo(ctx.session, hasher=ctx.passwords, known=known)

    creds = run_in_transaction(work)
    save_credentials(creds, path)
    cmds = demo_commands(settings.issuer, creds)
    if not as_json:
        _print_report(settings.issuer, creds, path, cmds)
        return
    clients: list[dict[str, Any]] = [
        {
            "client_id": spec.client_id,
            "client_secret": creds.secrets.get(spec.client_id),
            "grant_types": list(spec.grant_types),
            "redirect_uris": list(spec.redirect_uris),
            "is_public": spec.is_public,
        }
        for spec in DEMO_CLIENTS
    ]
    emit_json(
        {
            "credentials_file": str(path),
            "docs_url": f"{settings.issuer}/docs",
            "token_endpoint": f"{settings.issuer}/oauth/token",
            "user": {"email": creds.email, "password": creds.password},
            "clients": clients,
            "commands": cmds,
        }
    )


def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    file: Annotated[
        Path, typer.Option("--file", help="Where the demo credentials are kept.")
    ] = DEMO_FILE,
) -> None:
    """Create once a demo user and one demo client per grant; print ready-to-paste commands."""
    seed_and_report(settings_or_exit(), as_json=as_json, path=file)
