"""``oauth-service purge``: delete expired codes, refresh tokens, revocation-list rows, sessions and keys.

The same work the servers do every ``OAUTH_PURGE_INTERVAL`` seconds (see ``db.housekeeping``), for a cron job or
for an operator who turned the periodic purge off.
"""

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.cli.common import emit_json, run_with_engine
from oauth_service.db.housekeeping import PurgeReport, purge_expired
from oauth_service.db.key_rotation import retire_after
from oauth_service.settings import Settings


def purge(
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Rows deleted per transaction [default: OAUTH_PURGE_BATCH_SIZE].",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete expired rows in small batches and report how many went from each table."""

    async def work(settings: Settings, engine: AsyncEngine) -> PurgeReport:
        return await purge_expired(
            engine,
            retire_after=retire_after(settings.signed_token_ttl),
            batch_size=batch_size or settings.purge_batch_size,
        )

    report = run_with_engine(work)
    if as_json:
        emit_json(report.as_dict())
        return
    for table, count in report.as_dict().items():
        typer.echo(f"{table}: {count}")
    typer.echo(f"total: {report.total}")


def register(app: typer.Typer) -> None:
    """Add ``purge`` to the root command."""
    app.command("purge")(purge)
