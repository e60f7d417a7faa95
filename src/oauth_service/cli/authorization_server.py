"""The authorization server as ``perform`` sees it from outside: discovery (RFC 8414 §3) and token requests.

Token requests follow RFC 6749 §4.1.3, §4.3.2, §4.4.2 and §6. A client with a secret authenticates with HTTP
Basic, its id and secret form-urlencoded first (§2.3.1); a public client sends only ``client_id``. The metadata's
``issuer`` must be the URL it was fetched for (RFC 8414 §3.3), so the endpoints it names belong to the server the
user meant. Failures become two exceptions that the commands print as one line: ``ServerUnreachableError`` (no
HTTP answer) and ``ServerRefusedError`` (an RFC 6749 §5.2 error, or an answer that is not OAuth). The secret
travels only in the Authorization header and is never part of a message.
"""

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import httpx

METADATA_PATH = "/.well-known/oauth-authorization-server"
HTTP_TIMEOUT_SECONDS = 10.0


class ServerUnreachableError(Exception):
    """No HTTP answer from ``url`` (refused, timed out, TLS failure)."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"cannot reach {url}: {cause}")


class ServerRefusedError(Exception):
    """The server answered, but not with what was asked for; the message is the one line to print."""


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """The client on whose behalf ``perform`` asks: a public client has no secret."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """What ``perform`` needs from the RFC 8414 document."""

    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None
    iss_parameter_supported: bool


def _send(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return http.request(method, url, **kwargs)
    except (httpx.RequestError, httpx.InvalidURL) as exc:
        raise ServerUnreachableError(url, str(exc) or type(exc).__name__) from None


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def discover(http: httpx.Client, endpoint: str) -> ServerMetadata:
    """Fetch and check the metadata of the server whose issuer is ``endpoint``.

    This server publishes the document under its own base URL, so the well-known path is appended to the issuer.

    Raises:
        ServerUnreachableError: no answer.
        ServerRefusedError: no usable document, or one for another issuer.
    """
    url = endpoint + METADATA_PATH
    response = _send(http, "GET", url)
    body = _json_object(response)
    if response.status_code != 200 or body is None:
        raise ServerRefusedError(
            f"no server metadata at {url} (HTTP {response.status_code}); is --endpoint the server's issuer URL?"
        )
    issuer, token_endpoint = body.get("issuer"), body.get("token_endpoint")
    if issuer != endpoint:
        raise ServerRefusedError(
            f"the server at {endpoint} names its issuer {issuer!r} (RFC 8414 §3.3); use --endpoint {issuer}"
        )
    if not isinstance(token_endpoint, str):
        raise ServerRefusedError(f"the metadata at {url} names no token_endpoint")
    authorize = body.get("authorization_endpoint")
    return ServerMetadata(
        issuer=issuer,
        token_endpoint=token_endpoint,
        authorization_endpoint=authorize if isinstance(authorize, str) else None,
        iss_parameter_supported=body.get(
            "authorization_response_iss_parameter_supported"
        )
        is True,
    )


def _basic(client: ClientAuth, secret: str) -> str:
    raw = f"{quote_plus(client.client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def request_token(
    http: httpx.Client,
    metadata: ServerMetadata,
    client: ClientAuth,
    form: Mapping[str, str],
) -> dict[str, Any]:
    """POST ``form`` to the token endpoint as ``client``; return the successful token response.

    Raises:
        ServerUnreachableError: no answer.
        ServerRefusedError: an error response (``<error>: <error_description>``) or one without an access token.
    """
    headers = {"Accept": "application/json"}
    data = dict(form)
    if client.client_secret is None:
        data["client_id"] = client.client_id
    else:
        headers["Authorization"] = _basic(client, client.client_secret)
    url = metadata.token_endpoint
    response = _send(http, "POST", url, data=data, headers=headers)
    body = _json_object(response)
    if body is not None and isinstance(body.get("error"), str):
        description = body.get("error_description")
        raise ServerRefusedError(
            f"{body['error']}: {description}" if description else body["error"]
        )
    if (
        response.status_code != 200
        or body is None
        or not isinstance(body.get("access_token"), str)
    ):
        raise ServerRefusedError(
            f"{url} answered HTTP {response.status_code} without an access token"
        )
    return body
