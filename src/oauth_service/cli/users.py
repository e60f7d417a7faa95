"""``oauth-service users``: create, list, deactivate, log out and reset the password of resource owners."""

import sys
from typing import Annotated

import typer

from oauth_service.cli.common import (
    Context,
    emit_json,
    fail,
    run_in_transaction,
    user_json,
)
from oauth_service.db import admin
from oauth_service.oauth.models import User

app = typer.Typer(help="Manage users (resource owners).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
EmailOpt = Annotated[str, typer.Option("--email", help="The user's email address.")]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        help="Password (min. 8 characters); prompted without echo when omitted.",
    ),
]


def _password(given: str | None) -> str:
    """``--password``, else asked twice without echo on the terminal; no terminal is one line, exit 2."""
    if given is not None:
        return given
    if not sys.stdin.isatty():
        # click would read stdin with getpass's echo warning: a script gets a clear line instead.
        fail("no terminal to ask for the password on: pass --password")
    prompted: str = typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True
    )
    return prompted


def _show(user: User, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(user_json(user))
    else:
        flags = " admin" if user.is_admin else ""
        typer.echo(f"{verb} user {user.email} (id {user.id}){flags}")


@app.command("create")
def create(
    email: EmailOpt,
    password: PasswordOpt = None,
    is_admin: Annotated[
        bool, typer.Option("--admin", help="May be granted the 'admin' scope.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (emails are unique case-insensitively)."""
    secret = _password(password)

    async def work(ctx: Context) -> User:
        return await admin.create_user(
            ctx.session,
            email=email,
            password=secret,
            hasher=ctx.passwords,
            is_admin=is_admin,
        )

    _show(run_in_transaction(work), as_json, "created")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List users, ordered by email."""

    async def work(ctx: Context) -> list[User]:
        return await admin.list_users(ctx.session)

    users = run_in_transaction(work)
    if as_json:
        emit_json([user_json(user) for user in users])
        return
    for user in users:
        state = "active" if user.is_active else "inactive"
        admin_flag = " admin" if user.is_admin else ""
        typer.echo(f"{user.id}  {user.email}  {state}{admin_flag}")


@app.command("deactivate")
def deactivate(email: EmailOpt, as_json: JsonOpt = False) -> None:
    """Deactivate a user; their refresh tokens, sessions and access tokens stop working (README: Propagation)."""

    async def work(ctx: Context) -> User:
        return await admin.deactivate_user(ctx.session, email=email)

    _show(run_in_transaction(work), as_json, "deactivated")


@app.command("set-password")
def set_password(
    email: EmailOpt, password: PasswordOpt = None, as_json: JsonOpt = False
) -> None:
    """Replace a user's password; their refresh tokens, sessions and access tokens end (README: Propagation)."""
    secret = _password(password)

    async def work(ctx: Context) -> User:
        return await admin.set_user_password(
            ctx.session, email=email, password=secret, hasher=ctx.passwords
        )

    _show(run_in_transaction(work), as_json, "updated password of")


@app.command("logout")
def logout(email: EmailOpt, as_json: JsonOpt = False) -> None:
    """End every browser session of a user; their clients get back-channel logouts from the servers."""

    async def work(ctx: Context) -> tuple[User, int]:
        user = await admin.find_user(ctx.session, email=email)
        return user, await admin.logout_user(ctx.session, user_id=user.id)

    user, notified = run_in_transaction(work)
    if as_json:
        emit_json({"user_id": user.id, "backchannel_logouts": notified})
    else:
        typer.echo(
            f"logged out user {user.email}: {notified} back-channel logout(s) queued"
        )
