"""``oauth-service scopes``: create and list scopes (RFC 6749 §3.3)."""

from dataclasses import asdict
from typing import Annotated

import typer

from oauth_service.cli.common import Context, emit_json, run_in_transaction
from oauth_service.db import admin

app = typer.Typer(help="Manage scopes.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Scope token, e.g. notes:read.")],
    description: Annotated[
        str, typer.Option("--description", help="Shown on the consent page.")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a scope."""

    async def work(ctx: Context) -> admin.Scope:
        return await admin.create_scope(ctx.session, name=name, description=description)

    scope = run_in_transaction(work)
    if as_json:
        emit_json(asdict(scope))
    else:
        typer.echo(f"created scope {scope.name}")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List scopes with their descriptions."""

    async def work(ctx: Context) -> list[admin.Scope]:
        return await admin.list_scopes(ctx.session)

    scopes = run_in_transaction(work)
    if as_json:
        emit_json([asdict(scope) for scope in scopes])
        return
    for scope in scopes:
        typer.echo(f"{scope.name}  {scope.description}")
