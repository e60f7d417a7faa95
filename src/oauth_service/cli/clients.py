"""``oauth-service clients``: register, list, delete clients and rotate their secrets (RFC 6749 §2).

``--json`` speaks RFC 7591 client-metadata names, as the admin API does (``oauth.client_metadata``).
"""

from typing import Annotated, Any

import typer

from oauth_service.cli.common import (
    Context,
    emit_json,
    run_in_transaction,
    split_words,
)
from oauth_service.cli.table import lines_or_dash, render_table, wrapped
from oauth_service.db import admin
from oauth_service.oauth.client_metadata import SECRET_NEVER_EXPIRES, client_metadata
from oauth_service.oauth.models import Client

app = typer.Typer(help="Manage OAuth clients.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ClientIdArg = Annotated[str, typer.Argument(help="The client_id.")]
TABLE_HEADERS = ("CLIENT ID", "NAME", "TYPE", "GRANT TYPES", "SCOPE", "REDIRECT URIS")


def _show_with_secret(client: Client, secret: str | None, as_json: bool) -> None:
    if as_json:
        body: dict[str, Any] = client_metadata(client)
        if secret is not None:
            # As the admin API: secret fields only when a secret was issued (RFC 7591 §3.2.1).
            body["client_secret"] = secret
            body["client_secret_expires_at"] = SECRET_NEVER_EXPIRES
        emit_json(body)
        return
    typer.echo(f"client_id:     {client.client_id}")
    if secret is None:
        typer.echo("client_secret: (none: public client, use PKCE)")
    else:
        typer.echo(f"client_secret: {secret}")
        typer.echo("Store the secret now: it is shown only once.")


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    grant_types: Annotated[
        str,
        typer.Option(
            "--grant-types",
            help='Space-separated, e.g. "authorization_code refresh_token".',
        ),
    ],
    redirect_uris: Annotated[
        str,
        typer.Option(
            "--redirect-uris", help='Space-separated; "" when no redirect-based grant.'
        ),
    ] = "",
    scope: Annotated[
        str,
        typer.Option("--scope", help="Space-separated scopes the client may request."),
    ] = "read",
    public: Annotated[
        bool, typer.Option("--public", help="No secret (browser or native app; PKCE).")
    ] = False,
    first_party: Annotated[
        bool, typer.Option("--first-party", help="Trusted: consent is not asked.")
    ] = False,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", help="Fixed client_id (default: random)."),
    ] = None,
    post_logout_redirect_uris: Annotated[
        str,
        typer.Option(
            "--post-logout-redirect-uris",
            help="Space-separated URIs the logout endpoint may redirect to (OpenID Connect).",
        ),
    ] = "",
    backchannel_logout_uri: Annotated[
        str | None,
        typer.Option(
            "--backchannel-logout-uri",
            help="https URI that receives logout tokens when a user's session ends.",
        ),
    ] = None,
    backchannel_logout_session_required: Annotated[
        bool,
        typer.Option(
            "--backchannel-logout-session-required",
            help="The client needs sid in logout tokens.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a client; a confidential client's secret is printed once."""

    async def work(ctx: Context) -> tuple[Client, str | None]:
        return await admin.create_client(
            ctx.session,
            name=name,
            grant_types=split_words(grant_types),
            redirect_uris=split_words(redirect_uris),
            scopes=split_words(scope),
            is_public=public,
            is_first_party=first_party,
            client_id=client_id,
            post_logout_redirect_uris=split_words(post_logout_redirect_uris),
            backchannel_logout_uri=backchannel_logout_uri,
            backchannel_logout_session_required=backchannel_logout_session_required,
        )

    client, secret = run_in_transaction(work)
    _show_with_secret(client, secret, as_json)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List clients (secrets are never shown again)."""

    async def work(ctx: Context) -> list[Client]:
        return await admin.list_clients(ctx.session)

    clients = run_in_transaction(work)
    if as_json:
        emit_json([client_metadata(client) for client in clients])
        return
    if not clients:
        typer.echo("no clients (register one with: oauth-service clients create)")
        return
    for line in render_table(TABLE_HEADERS, [_table_row(c) for c in clients]):
        typer.echo(line)


def _table_row(client: Client) -> list[list[str]]:
    # One grant type and one redirect URI per line: both are values people copy, so they are never cut.
    kind = "public" if client.is_public else "confidential"
    if client.is_first_party:
        kind += ", first-party"
    return [
        [client.client_id],
        wrapped(client.name),
        [kind],
        lines_or_dash(sorted(client.grant_types)),
        wrapped(" ".join(sorted(client.scopes))),
        lines_or_dash(client.redirect_uris),
    ]


@app.command("delete")
def delete(client_id: ClientIdArg, as_json: JsonOpt = False) -> None:
    """Delete a client with its codes, refresh tokens, consents and access tokens (README: Propagation)."""

    async def work(ctx: Context) -> None:
        await admin.delete_client(
            ctx.session,
            client_id=client_id,
            client_cache_ttl=ctx.settings.client_cache_ttl,
        )

    run_in_transaction(work)
    if as_json:
        emit_json({"client_id": client_id, "deleted": True})
    else:
        typer.echo(f"deleted client {client_id}")


@app.command("rotate-secret")
def rotate_secret(client_id: ClientIdArg, as_json: JsonOpt = False) -> None:
    """Replace a confidential client's secret; servers refuse the old one (README: Propagation), tokens stay."""

    async def work(ctx: Context) -> tuple[Client, str]:
        return await admin.rotate_client_secret(ctx.session, client_id=client_id)

    client, secret = run_in_transaction(work)
    _show_with_secret(client, secret, as_json)
