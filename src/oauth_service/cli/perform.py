"""``oauth-service perform``: run a grant against a running server and print the tokens (like ``hydra perform``).

``client-credentials`` (RFC 6749 §4.4), ``password`` (§4.3), ``refresh`` (§6) and ``authorization-code`` (§4.1 with
PKCE, RFC 7636, through a loopback redirect, RFC 8252 §7.3). Endpoints come from the server's metadata
(RFC 8414) at ``--endpoint``, by default the configured issuer (``OAUTH_ISSUER``). A refusal by the server prints
``error: <error>: <error_description>`` and an unreachable server one line naming the URL, both with exit 1.
The client secret and the password are sent, never printed.
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from oauth_service.cli.authorization_code import (
    AuthorizationFailedError,
    authorize_and_exchange,
)
from oauth_service.cli.authorization_server import (
    HTTP_TIMEOUT_SECONDS,
    ClientAuth,
    ServerMetadata,
    ServerRefusedError,
    ServerUnreachableError,
    discover,
    request_token,
)
from oauth_service.cli.common import (
    EXIT_FAILURE,
    emit_json,
    fail,
    settings_or_exit,
    split_words,
)
from oauth_service.cli.loopback import RedirectUriError, parse_redirect_uri
from oauth_service.cli.token_report import format_token_response

app = typer.Typer(
    help="Run a grant against a running server and print the tokens.",
    no_args_is_help=True,
)

ClientIdOpt = Annotated[str, typer.Option("--client-id", help="The client's id.")]
ClientSecretOpt = Annotated[
    str | None,
    typer.Option(
        "--client-secret", help="The client's secret; omit for a public client."
    ),
]
ScopeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        help='Scopes to ask for: "read write", or repeat --scope (default: the server\'s choice).',
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        help="The server's issuer URL (default: OAUTH_ISSUER, else http://127.0.0.1:8000).",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the token response as JSON.")
]

Grant = Callable[[httpx.Client, ServerMetadata], dict[str, Any]]


def _endpoint(endpoint: str | None) -> str:
    value = settings_or_exit().issuer if endpoint is None else endpoint
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        fail(f"--endpoint must be an absolute http(s) URL, got {value!r}")
    # The issuer has no trailing slash (RFC 8414 §2 compares it byte for byte); people type one.
    return value.rstrip("/")


def _scope(values: list[str] | None) -> str:
    return " ".join(word for value in values or () for word in split_words(value))


def _perform(endpoint: str | None, grant: Grant, as_json: bool) -> None:
    """Discover the server, run ``grant``, print the tokens; every failure is one line and exit 1."""
    issuer = _endpoint(endpoint)
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
            body = grant(http, discover(http, issuer))
    except (
        ServerUnreachableError,
        ServerRefusedError,
        AuthorizationFailedError,
    ) as exc:
        fail(str(exc), EXIT_FAILURE)
    if as_json:
        emit_json(body)
    else:
        typer.echo(format_token_response(body))


def _token_grant(client: ClientAuth, form: dict[str, str], scope: str) -> Grant:
    form = form | {"scope": scope} if scope else form

    def grant(http: httpx.Client, metadata: ServerMetadata) -> dict[str, Any]:
        return request_token(http, metadata, client, form)

    return grant


@app.command("client-credentials")
def client_credentials(
    client_id: ClientIdOpt,
    client_secret: Annotated[
        str, typer.Option("--client-secret", help="The client's secret.")
    ],
    scope: ScopeOpt = None,
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Get a token for the client itself (RFC 6749 §4.4)."""
    form = {"grant_type": "client_credentials"}
    grant = _token_grant(ClientAuth(client_id, client_secret), form, _scope(scope))
    _perform(endpoint, grant, as_json)


@app.command("password")
def password_grant(
    client_id: ClientIdOpt,
    username: Annotated[
        str, typer.Option("--username", "--email", help="The user's email.")
    ],
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="The user's password; prompted without echo when omitted.",
        ),
    ] = None,
    client_secret: ClientSecretOpt = None,
    scope: ScopeOpt = None,
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Get tokens with a user's email and password (RFC 6749 §4.3)."""
    if password is None:
        # On stderr, unlike typer's option prompt, so that --json output stays pipeable.
        password = typer.prompt("Password", hide_input=True, err=True)
    form = {"grant_type": "password", "username": username, "password": password}
    grant = _token_grant(ClientAuth(client_id, client_secret), form, _scope(scope))
    _perform(endpoint, grant, as_json)


@app.command("refresh")
def refresh_grant(
    client_id: ClientIdOpt,
    refresh_token: Annotated[
        str, typer.Option("--refresh-token", help="The refresh token to redeem.")
    ],
    client_secret: ClientSecretOpt = None,
    scope: ScopeOpt = None,
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Redeem a refresh token for new tokens (RFC 6749 §6); the old one stops working."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    grant = _token_grant(ClientAuth(client_id, client_secret), form, _scope(scope))
    _perform(endpoint, grant, as_json)


@app.command("authorization-code")
def authorization_code(
    client_id: ClientIdOpt,
    client_secret: ClientSecretOpt = None,
    scope: ScopeOpt = None,
    endpoint: EndpointOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=1, max=65535, help="Callback port (default: a free one)."
        ),
    ] = None,
    redirect_uri: Annotated[
        str,
        typer.Option(
            "--redirect-uri",
            help="Loopback redirect URI to listen on; its port may vary from the registered one (RFC 8252 §7.3).",
        ),
    ] = "http://127.0.0.1/callback",
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, help="Seconds to wait for the redirect."),
    ] = 120.0,
    open_browser: Annotated[
        bool,
        typer.Option(
            "--open/--no-open", help="Open the URL in a browser when one is available."
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Sign a user in through the browser, receive the code on a loopback port, exchange it with PKCE."""
    try:
        address = parse_redirect_uri(redirect_uri, port)
    except RedirectUriError as exc:
        fail(str(exc))
    client = ClientAuth(client_id, client_secret)

    def grant(http: httpx.Client, metadata: ServerMetadata) -> dict[str, Any]:
        return authorize_and_exchange(
            http,
            metadata,
            client,
            address=address,
            scope=_scope(scope),
            timeout=timeout,
            open_browser=open_browser,
            say=lambda line: typer.echo(line, err=True),
        )

    _perform(endpoint, grant, as_json)
