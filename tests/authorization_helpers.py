"""Helpers that drive the authorization pages over HTTP the way a browser would (forms, cookies, redirects)."""

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

CALLBACK = "https://app.example/cb"


def new_pkce() -> tuple[str, str]:
    """Return a fresh (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(**params: str) -> str:
    """The authorization endpoint URL with ``params``."""
    return "/oauth/authorize?" + urlencode(params)


def query_of(location: str) -> dict[str, str]:
    """The single-valued query parameters of a URL."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def fragment_of(location: str) -> dict[str, str]:
    """The single-valued fragment parameters of a URL."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


def hidden(html: str, name: str) -> str:
    """The value of a hidden form field."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match is not None, f"no hidden field {name}"
    return match.group(1)


async def submit_login(
    http: httpx.AsyncClient, login_location: str, email: str, password: str
) -> httpx.Response:
    """Open the login page at ``login_location`` and post the credentials."""
    page = await http.get(login_location)
    assert page.status_code == 200, page.text
    form = {
        "request": hidden(page.text, "request"),
        "csrf_token": hidden(page.text, "csrf_token"),
        "email": email,
        "password": password,
    }
    return await http.post("/oauth/login", data=form)


async def submit_consent(
    http: httpx.AsyncClient, consent_location: str, decision: str = "approve"
) -> httpx.Response:
    """Open the consent page at ``consent_location`` and press Allow or Deny."""
    page = await http.get(consent_location)
    assert page.status_code == 200, page.text
    form = {
        "request": hidden(page.text, "request"),
        "csrf_token": hidden(page.text, "csrf_token"),
        "decision": decision,
    }
    return await http.post("/oauth/consent", data=form)


async def authorize_through_pages(
    http: httpx.AsyncClient,
    url: str,
    *,
    email: str,
    password: str,
    decision: str = "approve",
) -> httpx.Response:
    """Follow authorize → login → consent and return the final redirect to the client."""
    response = await http.get(url)
    if response.status_code == 302 and response.headers["location"].startswith(
        "/oauth/login"
    ):
        response = await submit_login(
            http, response.headers["location"], email, password
        )
        assert response.status_code == 303, response.text
        response = await http.get(response.headers["location"])
    if response.status_code == 302 and response.headers["location"].startswith(
        "/oauth/consent"
    ):
        response = await http.get(response.headers["location"])
    if response.status_code == 200 and 'action="/oauth/consent"' in response.text:
        form = {
            "request": hidden(response.text, "request"),
            "csrf_token": hidden(response.text, "csrf_token"),
            "decision": decision,
        }
        response = await http.post("/oauth/consent", data=form)
    return response
