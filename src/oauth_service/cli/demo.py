"""``oauth-service demo``: seed the demo user and clients, then print one ready-to-paste command per grant.

Each grant is one ``oauth-service perform`` line (RFC 6749 §4.1, §4.3, §4.4 and §6; the authorization-code flows
with PKCE, RFC 7636, through a loopback redirect, RFC 8252 §7.3), with the demo's real ids and secrets, so it
pastes into a terminal and runs. Client credentials also gets its curl line; the implicit flow, which only a
browser can complete, stays a URL.
"""

import shlex
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import typer

from oauth_service.cli.common import (
    Context,
    emit_json,
    run_in_transaction,
    settings_or_exit,
)
from oauth_service.db.demo import (
    DEMO_FILE,
    DemoCredentials,
    database_key,
    demo_clients,
    docs_redirect,
    load_credentials,
    save_credentials,
    seed_demo,
)
from oauth_service.settings import Settings

__all__ = ["cli_program", "demo", "demo_commands", "seed_and_report"]

# What `make run` installs; from an installed package the command is on PATH instead.
VENV_PROGRAM = Path(".venv/bin/oauth-service")
DEFAULT_CALLBACK_PATH = (
    "/callback"  # perform authorization-code's default redirect path
)


def cli_program() -> str:
    """How to call this CLI from the current directory: the checkout's venv after `make run`, else by name."""
    return str(VENV_PROGRAM) if VENV_PROGRAM.exists() else "oauth-service"


def _authorize_url(issuer: str, **params: str) -> str:
    return f"{issuer}/oauth/authorize?{urlencode(params, quote_via=quote)}"


def _redirect_options(issuer: str, client_id: str) -> list[str]:
    """``--redirect-uri`` for a demo client whose loopback registration is not at the default path.

    Only a loopback IP literal lets the listener's port vary (RFC 8252 §7.3), so the port is left out.
    """
    spec = next(spec for spec in demo_clients(issuer) if spec.client_id == client_id)
    loopback = [
        parts.path
        for parts in map(urlsplit, spec.redirect_uris)
        if parts.scheme == "http" and parts.hostname == "127.0.0.1"
    ]
    if not loopback or DEFAULT_CALLBACK_PATH in loopback:
        return []
    return [f"--redirect-uri=http://127.0.0.1{loopback[0]}"]


def _perform(program: str, grant: str, issuer: str, *options: str) -> str:
    # --name=value for ids and secrets: a secret may start with "-", which would otherwise read as an option.
    return shlex.join([program, "perform", grant, f"--endpoint={issuer}", *options])


def demo_commands(
    issuer: str, creds: DemoCredentials, program: str = "oauth-service"
) -> dict[str, str]:
    """Build one ready-to-paste command (or URL) per grant, calling the CLI as ``program``."""
    sec = creds.secrets
    service = [
        "--client-id=demo-service",
        f"--client-secret={sec.get('demo-service', '')}",
    ]
    password = [
        "--client-id=demo-password",
        f"--client-secret={sec.get('demo-password', '')}",
    ]
    return {
        "client_credentials": _perform(
            program, "client-credentials", issuer, *service, "--scope", "read"
        ),
        "client_credentials_curl": f"curl -u demo-service:{sec.get('demo-service', '')} -d 'grant_type=client_credentials&scope=read' {issuer}/oauth/token",
        "password": _perform(
            program,
            "password",
            issuer,
            *password,
            f"--email={creds.email}",
            f"--password={creds.password}",
            "--scope",
            "read write",
        ),
        "refresh_token": _perform(
            program, "refresh", issuer, *password, "--refresh-token=REFRESH_TOKEN"
        ),
        "authorization_code": _perform(
            program,
            "authorization-code",
            issuer,
            "--client-id=demo-web",
            f"--client-secret={sec.get('demo-web', '')}",
            *_redirect_options(issuer, "demo-web"),
            "--scope",
            "read",
        ),
        "pkce_public": _perform(
            program,
            "authorization-code",
            issuer,
            "--client-id=demo-spa",
            *_redirect_options(issuer, "demo-spa"),
            "--scope",
            "read",
        ),
        "openid": _perform(
            program,
            "authorization-code",
            issuer,
            "--client-id=demo-web",
            f"--client-secret={sec.get('demo-web', '')}",
            *_redirect_options(issuer, "demo-web"),
            "--scope",
            "openid profile email",
        ),
        "userinfo": f"curl -H 'Authorization: Bearer ACCESS_TOKEN' {issuer}/oauth/userinfo",
        "implicit_open": _authorize_url(
            issuer,
            response_type="token",
            client_id="demo-implicit",
            redirect_uri=docs_redirect(issuer),
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
        "# Client credentials (demo-service), then the same with curl",
        cmds["client_credentials"],
        cmds["client_credentials_curl"],
        "# Password grant (demo-password), then redeem the refresh_token it printed",
        cmds["password"],
        cmds["refresh_token"],
        "# Authorization code + PKCE (demo-web, confidential): sign in and approve in the browser; tokens print here",
        cmds["authorization_code"],
        "# Authorization code + PKCE (demo-spa, public: no secret)",
        cmds["pkce_public"],
        "# OpenID Connect sign-in (demo-web): the ID token's claims print too; then UserInfo with its access_token",
        cmds["openid"],
        cmds["userinfo"],
        "# Implicit (demo-implicit, legacy): the token comes back in the URL fragment",
        cmds["implicit_open"],
        "# Call the sample protected API with an access_token printed above",
        cmds["call_api"],
    ]
    typer.echo("\n".join(lines))


def seed_and_report(
    settings: Settings, *, as_json: bool, path: Path = DEMO_FILE
) -> None:
    """Seed (idempotently), save the working credentials, and print how to use them."""
    database = database_key(settings.database_url)
    known = load_credentials(database, path)

    async def work(ctx: Context) -> DemoCredentials:
        return await seed_demo(
            ctx.session, hasher=ctx.passwords, known=known, issuer=settings.issuer
        )

    creds = run_in_transaction(work)
    save_credentials(creds, database, path)
    for change in creds.changes:
        # Loud, on stderr: a secret someone copied earlier stopped working.
        typer.echo(f"note: the demo {change}", err=True)
    cmds = demo_commands(settings.issuer, creds, cli_program())
    if not as_json:
        _print_report(settings.issuer, creds, path, cmds)
        return
    clients: list[dict[str, Any]] = [
        {
            "client_id": spec.client_id,
            "client_secret": creds.secrets.get(spec.client_id),
            "grant_types": list(spec.grant_types),
            "redirect_uris": list(spec.redirect_uris),
            "token_endpoint_auth_method": "none"
            if spec.is_public
            else "client_secret_basic",
        }
        for spec in demo_clients(settings.issuer)
    ]
    emit_json(
        {
            "credentials_file": str(path),
            "docs_url": f"{settings.issuer}/docs",
            "token_endpoint": f"{settings.issuer}/oauth/token",
            "user": {"email": creds.email, "password": creds.password},
            "changes": creds.changes,
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
