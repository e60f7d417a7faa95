"""The ``oauth-service`` console script: serve, migrate, users, clients, scopes, demo, keys, purge, perform.

Every administration command reads settings with ``load_settings()``, runs its async work with ``asyncio.run`` in
one transaction, and reports bad input (invalid settings, rejected administration input, usage errors) as one line
on stderr with exit code 2, leaving the database unchanged. ``perform`` is a client of a running server over HTTP
(``cli/perform.py``): no database, and the server's refusals are one line with exit code 1.
"""

import typer

from oauth_service.cli.clients import app as clients_app
from oauth_service.cli.keys import app as keys_app
from oauth_service.cli.perform import app as perform_app
from oauth_service.cli.purge import register as register_purge_command
from oauth_service.cli.scopes import app as scopes_app
from oauth_service.cli.server import register as register_server_commands
from oauth_service.cli.users import app as users_app


def build_app() -> typer.Typer:
    """Assemble the command tree."""
    app = typer.Typer(
        name="oauth-service",
        help="OAuth 2.0 authorization server: run it and administer users, clients and scopes.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    register_server_commands(app)
    app.add_typer(users_app, name="users")
    app.add_typer(clients_app, name="clients")
    app.add_typer(scopes_app, name="scopes")
    app.add_typer(keys_app, name="keys")
    register_purge_command(app)
    app.add_typer(perform_app, name="perform")
    return app


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    command = typer.main.get_command(build_app())
    try:
        result = command.main(
            args=argv, prog_name="oauth-service", standalone_mode=False
        )
    except (
        typer.TyperException
    ) as exc:  # usage errors (exit 2); a missing command prints the help
        message = exc.format_message().strip()
        if message:  # empty when rich already printed the help
            typer.echo(message if "\n" in message else f"error: {message}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    return result if isinstance(result, int) else 0
