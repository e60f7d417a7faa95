"""The pages' Content-Security-Policy: form-action allows 'self' and, on login and consent, the client's origin.

Browsers apply form-action to the redirects that follow a form submission, so the 303 that ends the consent
(or a sign-in with consent already given) must match it; nothing from the redirect URI may break the header.
"""

import pytest

from oauth_service.api.pages import CSP, PAGE_HEADERS, form_action_headers

BASE = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def test_plain_pages_allow_forms_to_this_origin_only() -> None:
    assert PAGE_HEADERS[CSP] == f"{BASE}; form-action 'self'"


@pytest.mark.parametrize(
    ("redirect_uri", "source"),
    [
        ("https://app.example/cb", "https://app.example"),
        ("https://App.Example:8443/cb?x=1", "https://app.example:8443"),
        ("http://127.0.0.1:53682/callback", "http://127.0.0.1:53682"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("com.example.app:/oauth2redirect", "com.example.app:"),
        ("HTTPS://app.example/cb", "https://app.example"),
    ],
    ids=["https", "port", "loopback", "ipv6", "private-scheme", "upper-scheme"],
)
def test_flow_pages_add_the_redirect_uris_origin(
    redirect_uri: str, source: str
) -> None:
    assert form_action_headers(redirect_uri) == {
        CSP: f"{BASE}; form-action 'self' {source}"
    }


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://app.example;script-src *",
        "https://a b.example/cb",
        "https://app.example:99999/cb",
        "https://app.example,evil.example/cb",
        "1bad://x/cb",
    ],
    ids=["semicolon", "space", "bad-port", "comma", "bad-scheme"],
)
def test_unexpressible_redirect_uri_drops_form_action_not_the_flow(
    redirect_uri: str,
) -> None:
    assert form_action_headers(redirect_uri) == {CSP: BASE}
