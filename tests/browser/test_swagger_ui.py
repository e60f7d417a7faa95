"""Chromium drives /docs on a live server: authorize in Swagger UI (password, authorization code + PKCE), then
"Try it out" on the protected API and see 200. The page runs under its strict CSP with no network but the
server's own (Swagger UI's assets are local), so any CDN dependency or CSP violation fails the test.
"""

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Locator, Page
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_service.app import create_app
from oauth_service.runtime import Runtime
from tests.browser.conftest import LiveServer
from tests.conftest import make_settings
from tests.factories import make_client, make_user
from tests.live_server import free_port, serve_in_thread

pytestmark = pytest.mark.browser

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def docs_server(db_url: str, database: AsyncEngine) -> Iterator[LiveServer]:
    """The service with /docs on, served by uvicorn on a free loopback port (the issuer is its address)."""
    port = free_port()
    app = create_app(
        make_settings(db_url, issuer=f"http://127.0.0.1:{port}", docs_enabled=True)
    )
    with serve_in_thread(app, port, name="docs-server") as url:
        yield LiveServer(url)


class PageWatch:
    """Collects console errors (CSP violations land there) and requests leaving the server."""

    def __init__(self, page: Page, origin: str) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", self._console)
        page.on("request", lambda request: self._request(request.url, origin))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _request(self, url: str, origin: str) -> None:
        if not url.startswith((origin, "data:", "blob:")):
            self.foreign.append(url)


async def _open_docs(
    context: BrowserContext, server: LiveServer
) -> tuple[Page, PageWatch]:
    page = await context.new_page()
    watch = PageWatch(page, server.url)
    await page.goto(f"{server.url}/docs")
    await page.wait_for_selector("button.authorize")
    return page, watch


async def _try(
    page: Page,
    artifacts: Path,
    name: str,
    operation_id: str = "operations-sample_API-me_api_v1_me_get",
) -> str:
    """Close the dialog, "Try it out" on an operation (default GET /api/v1/me), Execute; return the body."""
    if await page.locator(".modal-ux").count():
        await page.click(".modal-ux button.close-modal")
        await page.locator(".modal-ux").wait_for(state="detached")
    operation = page.locator(f"#{operation_id}")
    await operation.locator(".opblock-summary-control").click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status")
    await status.wait_for()
    await page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    assert (await status.inner_text()).strip() == "200"
    return await operation.locator(
        ".live-responses-table tbody .response-col_description pre"
    ).first.inner_text()


def _flow(page: Page, name: str) -> Locator:
    """The Authorize dialog's section of one OAuth2 flow."""
    # The OAuth2 scheme's section: the OpenID Connect scheme, listed after it, repeats the flows it discovers.
    return page.locator(".auth-container", has_text=f"Flow: {name}").first


async def _assert_clean(watch: PageWatch) -> None:
    assert watch.foreign == [], (
        "the docs page must load nothing from outside the service"
    )
    assert watch.errors == [], "no console errors (CSP violations are reported there)"


async def test_swagger_password_flow_then_try_me(
    docs_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    artifacts: Path,
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    page, watch = await _open_docs(browser_context, docs_server)
    await page.click("button.authorize")
    flow = _flow(page, "password")
    await flow.locator("#oauth_username").fill(EMAIL)
    await flow.locator("#oauth_password").fill(PASSWORD)
    # The docs client is public: its id goes in the body, with no secret.
    await flow.locator("#password_type").select_option("request-body")
    assert await flow.locator("#client_id_password").input_value() == "docs"
    await page.screenshot(
        path=str(artifacts / "swagger-password-dialog.png"), full_page=True
    )
    await flow.locator("button.authorize").click()
    await flow.locator("button[aria-label='Remove authorization']").wait_for()
    body = await _try(page, artifacts, "swagger-password-me")
    assert '"type": "user"' in body
    assert f'"email": "{EMAIL}"' in body
    assert '"client_id": "docs"' in body
    await _assert_clean(watch)


async def test_swagger_authorization_code_flow_with_pkce_then_try_me(
    docs_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    artifacts: Path,
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    page, watch = await _open_docs(browser_context, docs_server)
    await page.click("button.authorize")
    flow = _flow(page, "authorizationCode")
    assert await flow.locator("#client_id_authorizationCode").input_value() == "docs"
    authorize_requests: list[str] = []
    browser_context.on(
        "request",
        lambda request: (
            authorize_requests.append(request.url)
            if "/oauth/authorize" in request.url
            else None
        ),
    )
    async with page.expect_popup() as popup_info:
        await flow.locator("button.authorize").click()
    popup = await popup_info.value
    await popup.wait_for_selector("form[action='/oauth/login']")
    assert len(authorize_requests) == 1
    assert "code_challenge_method=S256" in authorize_requests[0]
    assert "client_id=docs" in authorize_requests[0]
    await popup.get_by_label("Email").fill(EMAIL)
    await popup.get_by_label("Password").fill(PASSWORD)
    await popup.get_by_role("button", name="Sign in").click()
    await popup.wait_for_selector("form[action='/oauth/consent']")
    await popup.screenshot(
        path=str(artifacts / "swagger-code-consent.png"), full_page=True
    )
    await popup.get_by_role("button", name="Allow").click()
    await popup.wait_for_event("close")
    await flow.locator("button[aria-label='Remove authorization']").wait_for()
    body = await _try(page, artifacts, "swagger-code-me")
    assert '"type": "user"' in body
    assert '"client_id": "docs"' in body
    await _assert_clean(watch)


async def _login_and_allow(popup: Page) -> None:
    await popup.wait_for_selector("form[action='/oauth/login']")
    await popup.get_by_label("Email").fill(EMAIL)
    await popup.get_by_label("Password").fill(PASSWORD)
    await popup.get_by_role("button", name="Sign in").click()
    await popup.wait_for_selector("form[action='/oauth/consent']")
    await popup.get_by_role("button", name="Allow").click()
    await popup.wait_for_event("close")


async def test_swagger_implicit_flow_then_try_me_and_notes(
    docs_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    artifacts: Path,
) -> None:
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    page, watch = await _open_docs(browser_context, docs_server)
    await page.click("button.authorize")
    flow = _flow(page, "implicit")
    async with page.expect_popup() as popup_info:
        await flow.locator("button.authorize").click()
    await _login_and_allow(await popup_info.value)
    await flow.locator("button[aria-label='Remove authorization']").wait_for()
    body = await _try(page, artifacts, "swagger-implicit-me")
    assert '"client_id": "docs"' in body
    notes = await _try(
        page,
        artifacts,
        "swagger-implicit-notes",
        "operations-sample_API-list_notes_api_v1_notes_get",
    )
    assert '"notes": []' in notes
    await _assert_clean(watch)


async def test_swagger_client_credentials_flow_then_try_me(
    docs_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    artifacts: Path,
) -> None:
    _, secret = await make_client(
        runtime, client_id="demo-service", scopes=("read", "write")
    )
    assert secret is not None
    page, watch = await _open_docs(browser_context, docs_server)
    await page.click("button.authorize")
    flow = _flow(page, "clientCredentials")
    await flow.locator("#client_id_clientCredentials").fill("demo-service")
    await flow.locator("#client_secret_clientCredentials").fill(secret)
    await flow.locator("button.authorize").click()
    await flow.locator("button[aria-label='Remove authorization']").wait_for()
    body = await _try(page, artifacts, "swagger-client-credentials-me")
    assert '"type": "client"' in body
    assert '"client_id": "demo-service"' in body
    await _assert_clean(watch)


async def test_swagger_openid_connect_sign_in_then_try_userinfo(
    docs_server: LiveServer,
    runtime: Runtime,
    browser_context: BrowserContext,
    artifacts: Path,
) -> None:
    user, _ = await make_user(runtime, email=EMAIL, password=PASSWORD)
    page, watch = await _open_docs(browser_context, docs_server)
    await page.click("button.authorize")
    # The OpenID Connect scheme's code flow, read by Swagger UI from the discovery document.
    flow = page.locator(
        ".auth-container", has_text="OpenIdConnect (OAuth2, authorization_code"
    )
    for scope in ("openid", "profile", "email"):
        await flow.locator(
            f"label[for='{scope}-authorization_code-checkbox-OpenIdConnect']"
        ).click()
    authorize_requests: list[str] = []
    browser_context.on(
        "request",
        lambda request: (
            authorize_requests.append(request.url)
            if "/oauth/authorize" in request.url
            else None
        ),
    )
    async with page.expect_popup() as popup_info:
        await flow.locator("button.authorize").click()
    await _login_and_allow(await popup_info.value)
    await flow.locator("button[aria-label='Remove authorization']").wait_for()
    query = parse_qs(urlsplit(authorize_requests[0]).query)
    assert set(query["scope"][0].split()) >= {"openid", "profile", "email"}
    body = await _try(
        page,
        artifacts,
        "swagger-openid-userinfo",
        "operations-OpenID_Connect-userinfo_oauth_userinfo_get",
    )
    assert f'"sub": "{user.id}"' in body
    assert f'"email": "{EMAIL}"' in body
    await _assert_clean(watch)
