"""``oauth-service perform`` against a live server: the printed tokens work, and every failure is one line.

The commands run in-process (``main`` in a worker thread: they make blocking HTTP calls) against uvicorn on a
loopback port; users and clients are created through the in-process app's runtime on the same database.
``perform authorization-code`` with a browser is in ``tests/browser/test_perform.py``.
"""

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.cli.token_report import unverified_claims
from oauth_service.runtime import Runtime
from tests.cli_runs import Result, live_service, me, report_fields, run_cli
from tests.factories import make_client, make_user
from tests.live_server import free_port

Perform = Callable[..., Awaitable[Result]]

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def server(db_url: str, database: AsyncEngine) -> Iterator[str]:
    """The service on a free loopback port; yields its URL (also its issuer)."""
    with live_service(db_url) as url:
        yield url


@pytest.fixture
def perform(capsys: pytest.CaptureFixture[str]) -> Perform:
    """Run ``oauth-service perform ARGV`` in-process; return (code, stdout, stderr)."""

    async def run(*argv: str) -> Result:
        return await run_cli(capsys, ["perform", *argv])

    return run


async def test_perform_client_credentials_prints_token_and_claims(
    server: str, runtime: Runtime, perform: Perform
) -> None:
    client, secret = await make_client(runtime, client_id="svc")
    assert secret is not None
    code, out, err = await perform(
        "client-credentials",
        "--client-id=svc",
        f"--client-secret={secret}",
        "--scope=read",
        f"--endpoint={server}/",
    )
    assert (code, err) == (0, "")
    fields = report_fields(out)
    assert (fields["token_type"], fields["expires_in"], fields["scope"]) == (
        "Bearer",
        "600",
        "read",
    )
    assert "refresh_token" not in fields
    assert "access token claims (decoded, not verified):" in out
    assert f"  iss:       {server}\n" in out
    assert secret not in out
    assert await me(server, fields["access_token"]) == {
        "type": "client",
        "sub": client.client_id,
        "client_id": "svc",
        "scope": "read",
    }


async def test_perform_password_then_refresh_json_chain_to_api(
    server: str, runtime: Runtime, perform: Perform
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    _, secret = await make_client(
        runtime, client_id="app", grant_types=("password", "refresh_token")
    )
    assert secret is not None
    auth = ("--client-id", "app", "--client-secret", secret, "--endpoint", server)
    code, out, err = await perform(
        "password", *auth, "--email", EMAIL, "--password", PASSWORD, "--json"
    )
    assert (code, err) == (0, "")
    first = json.loads(out)
    assert set(first) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
    }
    assert PASSWORD not in out
    code, out, err = await perform(
        "refresh", *auth, "--refresh-token", first["refresh_token"], "--scope", "read"
    )
    assert (code, err) == (0, "")
    second = report_fields(out)
    assert second["scope"] == "read"
    assert second["refresh_token"] != first["refresh_token"]
    user = await me(server, second["access_token"])
    assert (user["type"], user["email"], user["scope"]) == ("user", EMAIL, "read")


async def test_perform_password_public_client_with_username_alias(
    server: str, runtime: Runtime, perform: Perform
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    await make_client(
        runtime, client_id="pub", grant_types=("password",), is_public=True
    )
    code, out, err = await perform(
        "password",
        "--client-id=pub",
        f"--username={EMAIL}",
        f"--password={PASSWORD}",
        "--scope=read",
        "--scope=write",
        f"--endpoint={server}",
        "--json",
    )
    assert (code, err) == (0, "")
    body = json.loads(out)
    assert body["scope"] == "read write"
    claims = unverified_claims(body["access_token"])
    assert claims is not None
    assert (claims["client_id"], claims["iss"]) == ("pub", server)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ("client-credentials", "--client-id=svc", "--client-secret=wrong-secret"),
            "error: invalid_client: Client authentication failed.",
        ),
        (
            ("password", "--client-id=svc", "--email", EMAIL, "--password", "x" * 9),
            "error: unauthorized_client: The client is not allowed to use this grant type.",
        ),
        (
            ("refresh", "--client-id=svc", "--refresh-token=no-such-token"),
            "error: unauthorized_client: The client is not allowed to use this grant type.",
        ),
        (
            ("client-credentials", "--client-id=svc", "--scope=admin"),
            "error: invalid_scope: The requested scope exceeds what may be granted.",
        ),
    ],
    ids=[
        "invalid_client",
        "unauthorized_client",
        "refresh_unauthorized",
        "invalid_scope",
    ],
)
async def test_perform_server_refusal_is_one_line_exit_1(
    server: str,
    runtime: Runtime,
    perform: Perform,
    argv: tuple[str, ...],
    line: str,
) -> None:
    _, secret = await make_client(runtime, client_id="svc")
    assert secret is not None
    if "--client-secret=wrong-secret" not in argv:
        argv = (*argv, f"--client-secret={secret}")
    code, out, err = await perform(*argv, f"--endpoint={server}")
    assert (code, out, err) == (1, "", line + "\n")


async def test_perform_unreachable_server_names_the_url(perform: Perform) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    code, out, err = await perform(
        "client-credentials",
        "--client-id=svc",
        "--client-secret=s3cret-value",
        f"--endpoint={endpoint}",
    )
    assert (code, out) == (1, "")
    assert err.startswith(
        f"error: cannot reach {endpoint}/.well-known/oauth-authorization-server: "
    )
    assert err.count("\n") == 1
    assert "s3cret-value" not in err


async def test_perform_endpoint_that_is_not_the_issuer_is_refused(
    server: str, perform: Perform
) -> None:
    other = server.replace("127.0.0.1", "localhost")
    code, out, err = await perform(
        "client-credentials",
        "--client-id=svc",
        "--client-secret=s",
        f"--endpoint={other}",
    )
    assert (code, out) == (1, "")
    assert err == (
        f"error: the server at {other} names its issuer '{server}' (RFC 8414 §3.3);"
        f" use --endpoint {server}\n"
    )


async def test_perform_endpoint_defaults_to_configured_issuer(
    server: str, runtime: Runtime, perform: Perform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTH_ISSUER", server)
    _, secret = await make_client(runtime, client_id="svc")
    code, out, err = await perform(
        "client-credentials", "--client-id=svc", f"--client-secret={secret}", "--json"
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ("--endpoint=ftp://example.com",),
            "error: --endpoint must be an absolute http(s) URL, got 'ftp://example.com'",
        ),
        (
            ("--endpoint=http://127.0.0.1:1", "--redirect-uri=http://localhost/cb"),
            "error: --redirect-uri must be http://127.0.0.1[:PORT]/PATH or http://[::1][:PORT]/PATH,"
            " got 'http://localhost/cb' (RFC 8252 §7.3: a loopback IP literal, so the server lets the port vary)",
        ),
        (
            (
                "--endpoint=http://127.0.0.1:1",
                "--redirect-uri=http://127.0.0.1:8765/callback",
                "--port=8766",
            ),
            "error: --port 8766 contradicts the port of --redirect-uri 'http://127.0.0.1:8765/callback'",
        ),
    ],
    ids=["endpoint", "redirect_uri", "port"],
)
async def test_perform_authorization_code_bad_options_exit_2(
    perform: Perform, argv: tuple[str, ...], line: str
) -> None:
    code, out, err = await perform("authorization-code", "--client-id=app", *argv)
    assert (code, out, err) == (2, "", line + "\n")


async def test_perform_authorization_code_without_redirect_times_out(
    server: str, runtime: Runtime, perform: Perform
) -> None:
    await make_client(
        runtime,
        client_id="native",
        grant_types=("authorization_code",),
        redirect_uris=("http://127.0.0.1/callback",),
        is_public=True,
    )
    code, out, err = await perform(
        "authorization-code",
        "--client-id=native",
        f"--endpoint={server}",
        "--no-open",
        "--timeout=1",
    )
    lines = err.splitlines()
    assert (code, out, len(lines)) == (1, "", 3)
    assert lines[0].startswith(
        "Open this URL to sign in (waiting 1 s for the redirect to"
    )
    assert lines[1].startswith(
        f"{server}/oauth/authorize?response_type=code&client_id=native"
    )
    assert lines[2].startswith("error: no redirect to http://127.0.0.1:")
    assert lines[2].endswith("/callback within 1 s")


async def test_perform_password_prompts_without_echo_when_missing(
    server: str, runtime: Runtime
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    _, secret = await make_client(runtime, client_id="app", grant_types=("password",))
    assert secret is not None
    # A new session has no controlling terminal, so the hidden prompt reads stdin (as when piped).
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oauth_service",
        "perform",
        "password",
        "--client-id=app",
        f"--client-secret={secret}",
        f"--email={EMAIL}",
        f"--endpoint={server}",
        "--json",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out, err = await asyncio.wait_for(
        process.communicate(f"{PASSWORD}\n".encode()), timeout=60
    )
    assert process.returncode == 0, err
    assert "Password:" in err.decode()
    assert PASSWORD not in out.decode() + err.decode()
    assert json.loads(out)["token_type"] == "Bearer"


async def test_perform_password_with_openid_prints_the_id_token_claims(
    server: str, runtime: Runtime, perform: Perform
) -> None:
    user, _ = await make_user(runtime, email=EMAIL, password=PASSWORD)
    _, secret = await make_client(
        runtime,
        client_id="oidc-app",
        grant_types=("password",),
        scopes=("openid", "read"),
    )
    assert secret is not None
    code, out, err = await perform(
        "password",
        "--client-id=oidc-app",
        f"--client-secret={secret}",
        f"--email={EMAIL}",
        f"--password={PASSWORD}",
        "--scope=openid read",
        f"--endpoint={server}",
    )
    assert (code, err) == (0, "")
    fields = report_fields(out)
    assert fields["scope"] == "openid read"
    claims = unverified_claims(fields["id_token"])
    assert claims is not None
    assert (claims["iss"], claims["sub"], claims["aud"], claims["amr"]) == (
        server,
        user.id,
        "oidc-app",
        ["pwd"],
    )
    assert "ID token claims (decoded, not verified):" in out
    assert "  aud:       oidc-app\n" in out
