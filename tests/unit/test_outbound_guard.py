"""The SSRF guard of outbound requests (``outbound.http``): address checks, URL rules, pinning, no redirects."""

import ipaddress
import socket
from typing import Any

import httpx
import pytest

from oauth_service.outbound.http import (
    OutboundRefusedError,
    outbound_client,
    pin,
    post_form,
    refusal,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("::1", "::1 is a loopback address"),
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("192.168.0.1", "192.168.0.1 is a private address"),
        ("172.16.0.1", "172.16.0.1 is a private address"),
        ("fc00::1", "fc00::1 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("fe80::1", "fe80::1 is a link-local address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("0.0.0.0", "0.0.0.0 is the unspecified address"),  # noqa: S104 - a test value
        ("240.0.0.1", "240.0.0.1 is a reserved address"),
        ("100.64.0.1", "100.64.0.1 is not globally routable"),
        ("::ffff:127.0.0.1", "127.0.0.1 is a loopback address"),
        ("fec0::1", "fec0::1 is a site-local address"),
        # 6to4 (2002::/16) wrapping the metadata address and a private one; a public one passes.
        ("2002:a9fe:a9fe::", "169.254.169.254 is a link-local address"),
        ("2002:a00:1::1", "10.0.0.1 is a private address"),
        ("2002:808:808::1", None),
        # Teredo: the client address is stored inverted in the last 32 bits (here 10.0.0.1, 127.0.0.1).
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1 is a private address"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1 is a loopback address"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_refusal_names_every_non_public_address(
    address: str, reason: str | None
) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


def _resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[str]:
    """Answer every lookup with ``addresses``; return the list of names looked up."""
    asked: list[str] = []

    async def fake_getaddrinfo(
        self: Any, host: str, port: int, **kwargs: Any
    ) -> list[tuple[Any, ...]]:
        asked.append(host)
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(
        "asyncio.base_events.BaseEventLoop.getaddrinfo", fake_getaddrinfo
    )
    return asked


async def test_pin_refuses_a_name_resolving_to_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "127.0.0.1")
    with pytest.raises(OutboundRefusedError) as refused:
        await pin("https://rp.example/logout", allow_private=False)
    assert (
        str(refused.value)
        == "refused: rp.example resolves to 127.0.0.1 is a loopback address"
    )


async def test_pin_refuses_when_any_answer_is_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "93.184.215.14", "10.0.0.7")
    with pytest.raises(OutboundRefusedError) as refused:
        await pin("https://rp.example/logout", allow_private=False)
    assert (
        str(refused.value)
        == "refused: rp.example resolves to 10.0.0.7 is a private address"
    )


async def test_pin_refuses_an_ip_literal_without_asking_dns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _resolving_to(monkeypatch, "93.184.215.14")
    with pytest.raises(OutboundRefusedError) as refused:
        await pin("https://169.254.169.254/latest", allow_private=False)
    assert str(refused.value) == (
        "refused: 169.254.169.254 resolves to 169.254.169.254 is a link-local address"
    )
    assert asked == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://rp.example/logout", "plain http is not allowed for outbound requests"),
        ("ftp://rp.example/logout", "not an absolute http(s) URL"),
        ("/logout", "not an absolute http(s) URL"),
        ("https://rp.example:99999/", "not a valid URL"),
    ],
)
async def test_pin_refuses_urls_that_are_not_https(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefusedError) as refused:
        await pin(url, allow_private=False)
    assert str(refused.value) == reason


async def test_pin_connects_to_the_checked_address_with_the_name_as_host_and_sni(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "93.184.215.14")
    target = await pin("https://rp.example:8443/bc?x=1", allow_private=False)
    assert (target.url, target.host_header, target.sni_hostname) == (
        "https://93.184.215.14:8443/bc?x=1",
        "rp.example:8443",
        "rp.example",
    )


async def test_pin_sends_an_internationalized_name_in_idna_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _resolving_to(monkeypatch, "93.184.215.14")
    target = await pin("https://Bücher.example:8443/bc", allow_private=False)
    assert (target.url, target.host_header, target.sni_hostname) == (
        "https://93.184.215.14:8443/bc",
        "xn--bcher-kva.example:8443",
        "xn--bcher-kva.example",
    )
    assert asked == ["xn--bcher-kva.example"]


@pytest.mark.parametrize(
    "url",
    ["https://a..example/bc", f"https://{'ü' * 64}.example/bc"],
    ids=["empty-label", "long-label"],
)
async def test_pin_refuses_a_name_without_an_idna_form(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    asked = _resolving_to(monkeypatch, "93.184.215.14")
    with pytest.raises(OutboundRefusedError) as refused:
        await pin(url, allow_private=False)
    assert str(refused.value) == "the host is not a valid domain name"
    assert asked == []


async def test_pin_brackets_an_ipv6_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, "2606:4700::1111")
    target = await pin("https://rp.example/bc", allow_private=False)
    assert (target.url, target.host_header) == (
        "https://[2606:4700::1111]/bc",
        "rp.example",
    )


async def test_post_form_sends_to_the_pinned_address_and_follows_no_redirect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "93.184.215.14")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"})

    async with outbound_client(transport=httpx.MockTransport(answer)) as http:
        status = await post_form(
            http,
            "https://rp.example/bc",
            {"logout_token": "t"},
            deadline=2,
            allow_private=False,
        )
    assert status == 302
    assert len(seen) == 1
    request = seen[0]
    assert str(request.url) == "https://93.184.215.14/bc"
    assert request.headers["host"] == "rp.example"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.extensions["sni_hostname"] == "rp.example"
    assert request.content == b"logout_token=t"


async def test_post_form_to_an_internationalized_name_sends_ascii_host_and_sni(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "93.184.215.14")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with outbound_client(transport=httpx.MockTransport(answer)) as http:
        status = await post_form(
            http,
            "https://bücher.example/bc",
            {"logout_token": "t"},
            deadline=2,
            allow_private=False,
        )
    assert status == 200
    (request,) = seen
    assert request.headers["host"] == "xn--bcher-kva.example"
    assert request.extensions["sni_hostname"] == "xn--bcher-kva.example"


async def test_post_form_with_private_networks_allowed_reaches_loopback_http() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    async with outbound_client(transport=httpx.MockTransport(answer)) as http:
        status = await post_form(
            http,
            "http://127.0.0.1:9/bc",
            {"logout_token": "t"},
            deadline=2,
            allow_private=True,
        )
    assert status == 204
