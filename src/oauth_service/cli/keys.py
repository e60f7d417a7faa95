"""``oauth-service keys``: list, rotate and ensure the JWT signing keys (RFC 7517 key sets; staged rotation).

``rotate`` adds a key that is published at once and signs after ``OAUTH_KEY_PUBLISH_DELAY`` (or ``--delay``);
running servers pick it up within ``OAUTH_KEY_RELOAD_INTERVAL``. ``ensure`` creates the first key if there is
none, encrypts plaintext private keys when ``OAUTH_KEY_ENCRYPTION_KEY`` is set, and checks that every stored key
opens with it. A missing or wrong key-encryption key is one line on stderr and exit code 2.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.cli.common import emit_json, fail, run_with_engine
from oauth_service.crypto.key_encryption import KeyEncryptionError, PrivateKeyCipher
from oauth_service.db.engine import make_engine
from oauth_service.db.key_rotation import (
    KeyView,
    check_private_keys,
    list_keys,
    reseal_keys,
    retire_after,
    rotate_key,
)
from oauth_service.db.keys import ensure_signing_key, load_keyset
from oauth_service.settings import Settings

T = TypeVar("T")

app = typer.Typer(help="Manage the JWT signing keys.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _run(work: Callable[[Settings, AsyncEngine, PrivateKeyCipher], Awaitable[T]]) -> T:
    async def with_cipher(settings: Settings, engine: AsyncEngine) -> T:
        return await work(
            settings, engine, PrivateKeyCipher(settings.key_encryption_key)
        )

    try:
        return run_with_engine(with_cipher)
    except KeyEncryptionError as exc:
        fail(str(exc))


def _line(view: KeyView) -> str:
    times = view.as_dict()
    fields = ("created_at", "activates_at", "retired_at", "expires_at")
    return f"{view.kid}  {view.alg}  {view.state:<8} " + "  ".join(
        f"{name.removesuffix('_at')}={times[name] or '-'}" for name in fields
    )


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List every stored key with its state (pending, active, retired, expired) and times."""

    async def work(
        settings: Settings, engine: AsyncEngine, _cipher: PrivateKeyCipher
    ) -> list[KeyView]:
        return await list_keys(
            engine, retire_after=retire_after(settings.signed_token_ttl)
        )

    views = _run(work)
    if as_json:
        emit_json([view.as_dict() for view in views])
        return
    for view in views:
        typer.echo(_line(view))


@app.command("rotate")
def rotate(
    delay: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seconds before the new key signs [default: OAUTH_KEY_PUBLISH_DELAY].",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish a new signing key now; it signs after the publish delay and the current key is retired then."""

    async def work(
        settings: Settings, engine: AsyncEngine, cipher: PrivateKeyCipher
    ) -> KeyView:
        await check_private_keys(
            engine, cipher=cipher
        )  # never add a key next to ones we cannot open
        seconds = settings.key_publish_delay if delay is None else delay
        return await rotate_key(
            engine,
            settings.signing_alg,
            publish_delay=timedelta(seconds=seconds),
            retire_after=retire_after(settings.signed_token_ttl),
            cipher=cipher,
        )

    view = _run(work)
    if as_json:
        emit_json(view.as_dict())
    else:
        typer.echo(
            f"published key {view.kid} ({view.alg}); it signs from {view.activates_at.isoformat()}"
        )


@app.command("ensure")
def ensure(as_json: JsonOpt = False) -> None:
    """Create the first key if none exists, encrypt plaintext keys, and check every key opens."""

    async def work(
        settings: Settings, engine: AsyncEngine, cipher: PrivateKeyCipher
    ) -> dict[str, Any]:
        await check_private_keys(engine, cipher=cipher)
        kid = await ensure_signing_key(
            engine,
            settings.signing_alg,
            retire_after=retire_after(settings.signed_token_ttl),
            cipher=cipher,
        )
        resealed = await reseal_keys(engine, cipher=cipher)
        keys = await load_keyset(engine, cipher=cipher)
        return {
            "signing_kid": keys.signing.kid,
            "ensured_kid": kid,
            "encrypted": cipher.encrypts,
            "resealed": resealed,
        }

    result = _run(work)
    if as_json:
        emit_json(result)
    else:
        state = (
            "encrypted"
            if result["encrypted"]
            else "stored in plaintext (OAUTH_KEY_ENCRYPTION_KEY unset)"
        )
        typer.echo(
            f"signing key {result['signing_kid']}; private keys {state}; {result['resealed']} re-encrypted"
        )


def check_keys_or_exit(settings: Settings) -> None:
    """Before serving: stop with one line (exit 2) when the stored private keys cannot be opened.

    Database trouble is left to the server, whose start-up and readiness probe report it.
    """

    async def check() -> None:
        engine = make_engine(settings)
        try:
            cipher = PrivateKeyCipher(settings.key_encryption_key)
            await check_private_keys(engine, cipher=cipher)
        finally:
            await engine.dispose()

    try:
        asyncio.run(check())
    except KeyEncryptionError as exc:
        fail(str(exc))
    except (DBAPIError, OSError):
        return
