"""The client's IP address, trusting ``X-Forwarded-For`` only from configured proxies (RFC 7239 §5.2 caveats).

A peer that is not a trusted proxy is the client, whatever headers it sends: otherwise anyone could pick the IP
the throttle counts against. When the peer *is* trusted, the forwarded chain is walked from the right (the hop
nearest to us) past every trusted proxy; the first untrusted address is the client. A malformed hop ends the walk
at the last trusted address, so a forged left part of the header is never believed.
"""

from collections.abc import Iterable, Sequence
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from starlette.requests import Request

Network = IPv4Network | IPv6Network

# Where ``api.middleware`` leaves the address it resolved (under the same settings), so routes need not redo it.
CLIENT_IP_SCOPE_KEY = "oauth_service.client_ip"


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse ``settings.trusted_proxies`` (IPs or CIDRs, validated by ``Settings``)."""
    return tuple(ip_network(entry, strict=False) for entry in entries)


def _is_trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def resolve_client_ip(
    peer: str | None, forwarded_for: Iterable[str], networks: Sequence[Network]
) -> str | None:
    """The client's address: ``peer``, or the nearest untrusted ``X-Forwarded-For`` hop behind trusted proxies."""
    if peer is None or not networks or not _is_trusted(peer, networks):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    client = peer
    for hop in reversed([hop for hop in hops if hop]):
        try:
            address = str(ip_address(hop))
        except ValueError:
            return client
        if not _is_trusted(address, networks):
            return address
        client = address
    return client


def client_ip(request: Request) -> str | None:
    """The resolved client IP of ``request`` under the app's ``trusted_proxies``."""
    scope = request.scope
    if CLIENT_IP_SCOPE_KEY in scope:
        resolved: str | None = scope[CLIENT_IP_SCOPE_KEY]
        return resolved
    networks = trusted_networks(tuple(request.app.state.settings.trusted_proxies))
    peer = request.client.host if request.client else None
    return resolve_client_ip(peer, request.headers.getlist("x-forwarded-for"), networks)
