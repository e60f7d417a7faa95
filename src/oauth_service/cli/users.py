"""``oauth-service users``: create, update, list, deactivate, log out and reset the password of resource owners.

``create`` and ``update`` take the standard claims UserInfo and ID tokens release (OpenID Connect Core §5.1:
``--name``, ``--locale``, ``--email-verified``, ...), checked by ``oidc.profile_rules``; on ``update`` only the
options given change, and an empty string clears a claim.
"""

import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from oauth_service.cli.common import (
    Context,
    emit_json,
    fail,
    run_in_transaction,
    user_json,
)
from oauth_service.db import admin
from oauth_service.oauth.models import User, UserProfile
from oauth_service.oidc.profile_rules import ProfileValue

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


def _claim_option(flag: str, what: str) -> Any:
    return typer.Option(flag, help=f"{what} (OpenID Connect standard claim).")


NameOpt = Annotated[str | None, _claim_option("--name", "Full name")]
GivenNameOpt = Annotated[str | None, _claim_option("--given-name", "Given name")]
FamilyNameOpt = Annotated[str | None, _claim_option("--family-name", "Family name")]
PreferredUsernameOpt = Annotated[
    str | None, _claim_option("--preferred-username", "Preferred username")
]
PictureOpt = Annotated[
    str | None, _claim_option("--picture", "Profile picture URL (http or https)")
]
LocaleOpt = Annotated[
    str | None, _claim_option("--locale", "BCP 47 language tag, e.g. en or en-US")
]
ZoneinfoOpt = Annotated[
    str | None, _claim_option("--zoneinfo", "Time zone name, e.g. Europe/Paris")
]
EmailVerifiedOpt = Annotated[
    bool | None,
    typer.Option(
        "--email-verified/--no-email-verified",
        help="Whether the email address was verified (the email_verified claim).",
    ),
]


def _claims(**given: ProfileValue) -> dict[str, ProfileValue]:
    """The claim options given on the command line (None: not given)."""
    return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True, slots=True)
class _Shown:
    user: User
    profile: UserProfile


async def _shown(ctx: Context, user: User) -> _Shown:
    # The row was just read or written in this session: no second query.
    return _Shown(user, await admin.user_profile(ctx.session, user.id))


def _claims_json(profile: UserProfile) -> dict[str, Any]:
    # ``updated_at`` in seconds since the epoch, as UserInfo and the admin API say it.
    return {
        "name": profile.name,
        "given_name": profile.given_name,
        "family_name": profile.family_name,
        "preferred_username": profile.preferred_username,
        "picture": profile.picture,
        "locale": profile.locale,
        "zoneinfo": profile.zoneinfo,
        "email_verified": profile.email_verified,
        "updated_at": profile.claim("updated_at"),
    }


def _show(shown: _Shown, as_json: bool, verb: str) -> None:
    user, profile = shown.user, shown.profile
    if as_json:
        emit_json({**user_json(user), **_claims_json(profile)})
        return
    flags = " admin" if user.is_admin else ""
    typer.echo(f"{verb} user {user.email} (id {user.id}){flags}")
    for name, value in _claims_json(profile).items():
        if name != "updated_at" and value not in (None, False):
            typer.echo(f"  {name}: {str(value).lower() if value is True else value}")


@app.command("create")
def create(
    email: EmailOpt,
    password: PasswordOpt = None,
    is_admin: Annotated[
        bool, typer.Option("--admin", help="May be granted the 'admin' scope.")
    ] = False,
    name: NameOpt = None,
    given_name: GivenNameOpt = None,
    family_name: FamilyNameOpt = None,
    preferred_username: PreferredUsernameOpt = None,
    picture: PictureOpt = None,
    locale: LocaleOpt = None,
    zoneinfo: ZoneinfoOpt = None,
    email_verified: EmailVerifiedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (emails are unique case-insensitively), with their standard claims if given."""
    claims = _claims(
        name=name,
        given_name=given_name,
        family_name=family_name,
        preferred_username=preferred_username,
        picture=picture,
        locale=locale,
        zoneinfo=zoneinfo,
        email_verified=email_verified,
    )
    secret = _password(password)

    async def work(ctx: Context) -> _Shown:
        user = await admin.create_user(
            ctx.session,
            email=email,
            password=secret,
            hasher=ctx.passwords,
            is_admin=is_admin,
            profile=claims,
        )
        return await _shown(ctx, user)

    _show(run_in_transaction(work), as_json, "created")


@app.command("update")
def update(
    email: EmailOpt,
    name: NameOpt = None,
    given_name: GivenNameOpt = None,
    family_name: FamilyNameOpt = None,
    preferred_username: PreferredUsernameOpt = None,
    picture: PictureOpt = None,
    locale: LocaleOpt = None,
    zoneinfo: ZoneinfoOpt = None,
    email_verified: EmailVerifiedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a user's standard claims: only the options given, '' clears one; updated_at moves to now."""
    claims = _claims(
        name=name,
        given_name=given_name,
        family_name=family_name,
        preferred_username=preferred_username,
        picture=picture,
        locale=locale,
        zoneinfo=zoneinfo,
        email_verified=email_verified,
    )
    if not claims:
        fail("nothing to update: pass at least one claim option (see --help)")

    async def work(ctx: Context) -> _Shown:
        user = await admin.update_user(ctx.session, email=email, changes=claims)
        return await _shown(ctx, user)

    _show(run_in_transaction(work), as_json, "updated")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List users, ordered by email."""

    async def work(ctx: Context) -> list[_Shown]:
        return [await _shown(ctx, user) for user in await admin.list_users(ctx.session)]

    users = run_in_transaction(work)
    if as_json:
        emit_json([{**user_json(s.user), **_claims_json(s.profile)} for s in users])
        return
    for shown in users:
        user = shown.user
        state = "active" if user.is_active else "inactive"
        admin_flag = " admin" if user.is_admin else ""
        name = f"  {shown.profile.name}" if shown.profile.name else ""
        typer.echo(f"{user.id}  {user.email}  {state}{admin_flag}{name}")


@app.command("deactivate")
def deactivate(email: EmailOpt, as_json: JsonOpt = False) -> None:
    """Deactivate a user; their refresh tokens, sessions and access tokens stop working (README: Propagation)."""

    async def work(ctx: Context) -> _Shown:
        return await _shown(ctx, await admin.deactivate_user(ctx.session, email=email))

    _show(run_in_transaction(work), as_json, "deactivated")


@app.command("set-password")
def set_password(
    email: EmailOpt, password: PasswordOpt = None, as_json: JsonOpt = False
) -> None:
    """Replace a user's password; their refresh tokens, sessions and access tokens end (README: Propagation)."""
    secret = _password(password)

    async def work(ctx: Context) -> _Shown:
        user = await admin.set_user_password(
            ctx.session, email=email, password=secret, hasher=ctx.passwords
        )
        return await _shown(ctx, user)

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
