"""ID-token validation the way a relying party does it, with libraries that are not ours.

joserfc (the JOSE library Authlib's client uses) checks the signature against the server's published JWKS;
Authlib's ``CodeIDToken`` / ``ImplicitIDToken`` check the claims (OpenID Connect Core §3.1.3.7, §3.2.2.11):
``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``at_hash``, ``azp``, ``auth_time``.
"""

from dataclasses import dataclass
from typing import Any, cast

import httpx
from authlib.oidc.core import CodeIDToken, ImplicitIDToken
from joserfc import jwt
from joserfc.jwk import KeySet, KeySetSerialization

from tests.conftest import ISSUER


@dataclass(frozen=True)
class ValidIdToken:
    """A validated ID token: its JOSE header and its claims."""

    header: dict[str, Any]
    claims: dict[str, Any]


async def published_jwks(http: httpx.AsyncClient) -> dict[str, Any]:
    """The JWK Set the server publishes."""
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    jwks: dict[str, Any] = response.json()
    return jwks


def validate_id_token(
    id_token: str,
    jwks: dict[str, Any],
    *,
    client_id: str,
    nonce: str | None = None,
    access_token: str | None = None,
    implicit: bool = False,
    max_age: int | None = None,
    now: int | None = None,
) -> ValidIdToken:
    """Verify ``id_token`` as a relying party would; raise when any check fails."""
    token = jwt.decode(
        id_token,
        KeySet.import_key_set(cast(KeySetSerialization, jwks)),
        algorithms=["RS256", "ES256"],
    )
    claims_class = ImplicitIDToken if implicit else CodeIDToken
    params: dict[str, Any] = {"client_id": client_id}
    if nonce is not None:
        params["nonce"] = nonce
    if access_token is not None:
        params["access_token"] = access_token
    if max_age is not None:
        params["max_age"] = max_age
    claims = claims_class(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": ISSUER},
            "aud": {"essential": True, "value": client_id},
        },
        params=params,
    )
    claims.validate(now=now)
    return ValidIdToken(dict(token.header), dict(claims))
