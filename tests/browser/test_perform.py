"""Chromium drives ``perform authorization-code``: the demo's printed commands, a denial, forged redirects.

The command runs as a subprocess, as a user runs it (``--no-open``): it prints the authorization URL on stderr,
Playwright opens it, signs in and answers the consent page, and the command must finish within 60 s. The
loopback listener is the redirect target, so the browser lands on its "you can close this tab" page.
"""

import asyncio
import os
import shlex
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, Page

from oauth_service.cli.demo import demo_commands
from oauth_service.cli.token_report import unverified_claims
from oauth_service.db.demo import DemoCredentials
from oauth_service.runtime import Runtime
from tests.browser.conftest import LiveServer
from tests.cli_runs import me, report_fields, seed_demo_data

pytestmark = pytest.mark.browser

FINISH_SECONDS = 60


class PerformRun:
    """One ``oauth-service perform ...`` process, its stderr read up to the authorization URL."""

    def __init__(self, process: asyncio.subprocess.Process, endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint
        self.prompt: list[str] = []

    @classmethod
    async def start(cls, command: str, endpoint: str) -> "PerformRun":
        """Run a printed ``oauth-service perform`` line (with ``--no-open``) through this interpreter."""
        _program, *argv = shlex.split(command)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "oauth_service",
            *argv,
            "--no-open",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(process, endpoint)

    async def authorization_url(self) -> str:
        """The URL the command asks the user to open."""
        assert self.process.stderr is not None
        while True:
            line = await asyncio.wait_for(self.process.stderr.readline(), timeout=30)
            assert line, f"no authorization URL; stderr so far: {self.prompt}"
            text = line.decode().rstrip("\n")
            self.prompt.append(text)
            if text.startswith(f"{self.endpoint}/oauth/authorize?"):
                return text

    async def finish(self) -> tuple[int, str, list[str]]:
        """Exit code, stdout and the stderr lines after the URL, within ``FINISH_SECONDS``."""
        out, err = await asyncio.wait_for(
            self.process.communicate(), timeout=FINISH_SECONDS
        )
        code = self.process.returncode
        assert code is not None
        return code, out.decode(), err.decode().splitlines()


async def _sign_in(page: Page, creds: DemoCredentials, decision: str) -> None:
    await page.wait_for_selector("form[action='/oauth/login']")
    await page.get_by_label("Email").fill(creds.email)
    await page.get_by_label("Password").fill(creds.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("form[action='/oauth/consent']")
    await page.get_by_role("button", name=decision).click()


@pytest.mark.parametrize(
    ("command", "client_id"),
    [("authorization_code", "demo-web"), ("pkce_public", "demo-spa")],
    ids=["confidential", "public"],
)
async def test_perform_authorization_code_demo_command_prints_working_tokens(
    live_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    command: str,
    client_id: str,
) -> None:
    creds = await seed_demo_data(runtime)
    line = demo_commands(live_server.url, creds)[command]
    run = await PerformRun.start(line, live_server.url)
    url = await run.authorization_url()
    page = await browser_context.new_page()
    await page.goto(url)
    await _sign_in(page, creds, "Allow")
    await page.wait_for_selector("text=You can close this tab")
    assert await page.inner_text("h1") == "Signed in"
    code, out, err = await run.finish()
    assert (code, err) == (0, [])
    fields = report_fields(out)
    assert (fields["token_type"], fields["scope"]) == ("Bearer", "read")
    assert fields["refresh_token"]
    claims = unverified_claims(fields["access_token"])
    assert claims is not None
    assert (claims["client_id"], claims["iss"]) == (client_id, live_server.url)
    user = await me(live_server.url, fields["access_token"])
    assert (user["type"], user["email"]) == ("user", creds.email)
    secret = creds.secrets.get(client_id)
    assert secret is None or secret not in out + "\n".join(run.prompt)


async def test_perform_authorization_code_denied_exits_1_with_one_line(
    live_server: LiveServer, runtime: Runtime, browser_context: BrowserContext
) -> None:
    creds = await seed_demo_data(runtime)
    run = await PerformRun.start(
        demo_commands(live_server.url, creds)["authorization_code"], live_server.url
    )
    page = await browser_context.new_page()
    await page.goto(await run.authorization_url())
    await _sign_in(page, creds, "Deny")
    await page.wait_for_selector("text=Sign-in failed")
    assert (await run.finish()) == (
        1,
        "",
        ["error: access_denied: The resource owner denied the request."],
    )


async def test_perform_authorization_code_ignores_a_request_with_another_state(
    live_server: LiveServer, runtime: Runtime, browser_context: BrowserContext
) -> None:
    """Any page can make the browser hit the listener: a wrong (or non-ASCII) state must not end the wait."""
    creds = await seed_demo_data(runtime)
    run = await PerformRun.start(
        demo_commands(live_server.url, creds)["pkce_public"], live_server.url
    )
    url = await run.authorization_url()
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    page = await browser_context.new_page()
    for state in ("not-the-request-state", "\u00e9t\u00e9"):
        forged = {"code": "attacker-code", "state": state, "iss": live_server.url}
        await page.goto(f"{redirect_uri}?{urlencode(forged)}")
        assert await page.inner_text("h1") == "Not this sign-in"
    await page.goto(url)
    await _sign_in(page, creds, "Allow")
    await page.wait_for_selector("text=You can close this tab")
    code, out, err = await run.finish()
    assert (code, err) == (0, [])
    await me(live_server.url, report_fields(out)["access_token"])


@pytest.mark.parametrize(
    ("forged", "line"),
    [
        (
            {"iss": "https://attacker.example"},
            "error: the redirect's iss 'https://attacker.example' is not the issuer {issuer} (RFC 9207): refused",
        ),
    ],
    ids=["iss"],
)
async def test_perform_authorization_code_refuses_forged_redirect(
    live_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    forged: dict[str, str],
    line: str,
) -> None:
    creds = await seed_demo_data(runtime)
    run = await PerformRun.start(
        demo_commands(live_server.url, creds)["pkce_public"], live_server.url
    )
    request = {
        k: v[0]
        for k, v in parse_qs(urlsplit(await run.authorization_url()).query).items()
    }
    # What another page could make the browser send to the listener: a code of the attacker's choosing.
    params = {
        "code": "attacker-code",
        "state": request["state"],
        "iss": live_server.url,
    }
    page = await browser_context.new_page()
    await page.goto(f"{request['redirect_uri']}?{urlencode(params | forged)}")
    assert await page.inner_text("h1") == "Sign-in failed"
    assert (await run.finish()) == (1, "", [line.format(issuer=live_server.url)])


async def test_perform_openid_demo_command_prints_an_id_token_and_userinfo_answers(
    live_server: LiveServer, runtime: Runtime, browser_context: BrowserContext
) -> None:
    creds = await seed_demo_data(runtime)
    commands = demo_commands(live_server.url, creds)
    run = await PerformRun.start(commands["openid"], live_server.url)
    url = await run.authorization_url()
    nonce = parse_qs(urlsplit(url).query)["nonce"]
    page = await browser_context.new_page()
    await page.goto(url)
    await _sign_in(page, creds, "Allow")
    await page.wait_for_selector("text=You can close this tab")
    code, out, err = await run.finish()
    assert (code, err) == (0, [])
    fields = report_fields(out)
    assert fields["scope"] == "email openid profile"
    claims = unverified_claims(fields["id_token"])
    assert claims is not None
    assert [claims["nonce"]] == nonce
    assert (claims["aud"], claims["iss"], claims["amr"]) == (
        "demo-web",
        live_server.url,
        ["pwd"],
    )
    assert "ID token claims (decoded, not verified):" in out
    _, _, userinfo_url = commands["userinfo"].rpartition(" ")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(
            userinfo_url,
            headers={"Authorization": f"Bearer {fields['access_token']}"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["sub"], body["email"], body["email_verified"]) == (
        claims["sub"],
        creds.email,
        True,
    )
