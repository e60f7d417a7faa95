"""POSTs to URLs that clients registered (back-channel logout), guarded against server-side request forgery.

A registered URL is attacker-chosen text: without a guard, a client could make this server POST into its own
network (a metadata service, an admin port on loopback). So the host is resolved first and every address it
resolves to must be public (not loopback, private, link-local, multicast, reserved or unspecified) unless
``allow_private`` is set; the connection then goes to the checked address itself, with the original name in the
``Host`` header and, for https, as the TLS server name (``sni_hostname``), so a second DNS answer (a rebind)
cannot switch it. Only https leaves the machine (plain http only with ``allow_private``, for loopback
receivers). No redirect is followed, no proxy from the environment is used, the whole exchange has one
deadline, and the response body is never read: only the status code matters (Back-Channel Logout 1.0 §2.8).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefusedError(Exception):
    """The URL may not be contacted; ``str(error)`` says why in one line (no secrets)."""


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    """Where a request goes: the checked address, and the name the URL gave."""

    url: str  # the URL with the address in place of the name
    host_header: str
    sni_hostname: str | None  # https only


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None when it is.

    An IPv6 address that carries an IPv4 one (mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, Teredo's client
    in ``2001::/32``) is judged by the IPv4 address too: a relay or a dual stack delivers it there.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (
            address.ipv4_mapped,
            address.sixtofour,
            address.teredo[1] if address.teredo else None,
        )
        for inner in embedded:
            if inner is not None and (reason := refusal(inner)) is not None:
                return reason
        if address.ipv4_mapped is not None:
            return None
    checks = (
        ("the unspecified address", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        # fec0::/10, deprecated (RFC 3879) but still routed inside some networks.
        (
            "a site-local address",
            isinstance(address, ipaddress.IPv6Address) and address.is_site_local,
        ),
        ("a multicast address", address.is_multicast),
        ("a reserved address", address.is_reserved),
        ("a private address", address.is_private),
        ("not globally routable", not address.is_global),
    )
    for kind, applies in checks:
        if applies:
            return f"{address} is {kind}"
    return None


def _ascii_host(host: str) -> str:
    """``host`` as it goes on the wire: an IP literal unchanged, a name in IDNA form (RFC 5891 §4.4).

    A ``Host`` header and a TLS server name are ASCII only; httpx raises UnicodeEncodeError on "bücher.example".

    Raises:
        OutboundRefusedError: the name has no IDNA form (an empty label, one longer than 63 characters).
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise OutboundRefusedError("the host is not a valid domain name") from None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise OutboundRefusedError(f"cannot resolve {host}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # The scope id of a link-local IPv6 answer ("fe80::1%eth0") is not part of the address.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundRefusedError(f"cannot resolve {host}")
    return addresses


async def pin(url: str, *, allow_private: bool) -> PinnedTarget:
    """Check ``url`` and resolve its host; return the request target pinned to a checked address.

    Raises:
        OutboundRefusedError: not an absolute https URL (http only with ``allow_private``), a host name with
            no IDNA form, or the host resolves to an address that is not public and ``allow_private`` is off. Every answer must pass:
            one private address among public ones is refused too.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefusedError("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http"} or not parts.hostname:
        raise OutboundRefusedError("not an absolute http(s) URL")
    if scheme == "http" and not allow_private:
        raise OutboundRefusedError("plain http is not allowed for outbound requests")
    host = _ascii_host(parts.hostname)
    default_port = 443 if scheme == "https" else 80
    addresses = await _resolve(host, port or default_port)
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise OutboundRefusedError(f"refused: {host} resolves to {reason}")
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if port is None else f"{literal}:{port}"
    host_literal = f"[{host}]" if ":" in host else host
    host_header = host_literal if port is None else f"{host_literal}:{port}"
    target = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return PinnedTarget(
        url=target,
        host_header=host_header,
        sni_hostname=host if scheme == "https" else None,
    )


def outbound_client(
    *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An HTTP client for guarded requests: no proxy from the environment, no redirects, no cookies kept."""
    return httpx.AsyncClient(
        transport=transport, trust_env=False, follow_redirects=False
    )


async def post_form(
    http: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str],
    *,
    deadline: float,
    allow_private: bool,
) -> int:
    """POST ``form`` (urlencoded) to ``url`` through the guard; return the response's status code.

    The resolution, the connection, the request and the response head share one deadline of ``deadline``
    seconds; the body is not read.

    Raises:
        OutboundRefusedError: the guard refused the URL (nothing was sent).
        TimeoutError: the deadline passed.
        httpx.HTTPError: the connection or the exchange failed.
    """
    async with asyncio.timeout(deadline):
        target = await pin(url, allow_private=allow_private)
        extensions = (
            {} if target.sni_hostname is None else {"sni_hostname": target.sni_hostname}
        )
        request = http.build_request(
            "POST",
            target.url,
            data=dict(form),
            headers={"Host": target.host_header},
            timeout=deadline,
            extensions=extensions,
        )
        response = await http.send(request, stream=True)
        await response.aclose()  # the body is never read
        return response.status_code
