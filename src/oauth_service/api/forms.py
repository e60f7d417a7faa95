"""Reading token-endpoint style requests: the urlencoded body and the client's credentials.

RFC 6749 §3.2 (POST, ``application/x-www-form-urlencoded``, UTF-8), §3.1 (a parameter sent without a value is
treated as omitted; parameters must not be repeated), §2.3.1 (``client_secret_basic``, where the id and secret are
form-urlencoded before Basic encoding, or ``client_secret_post``; one method per request) and RFC 6750 §5.3's
advice not to put credentials in URLs. The body is parsed here, not by FastAPI ``Form`` fields, so a missing or
malformed field is ``invalid_request`` rather than a 422.
"""

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, unquote_plus

from starlette.datastructures import Headers
from starlette.requests import Request

from oauth_service.oauth.errors import InvalidClientError, InvalidRequestError
from oauth_service.oauth.models import ClientCredentials

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 64
# Parameters that carry a secret: refused in the URL, where proxies and logs would keep them.
SECRET_PARAMETERS = frozenset(
    {"client_secret", "password", "refresh_token", "code", "code_verifier", "token"}
)
# The parameters these endpoints read (token, revocation, introspection): only these names are echoed in an
# error_description; any other name is the sender's own text, and is left out.
KNOWN_PARAMETERS = frozenset(
    {
        "grant_type",
        "client_id",
        "client_secret",
        "scope",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "username",
        "email",
        "password",
        "token",
        "token_type_hint",
    }
)


def _content_type(headers: Headers) -> tuple[str, dict[str, str]]:
    value = headers.get("content-type", "")
    if value == FORM_TYPE:  # what nearly every client sends
        return FORM_TYPE, {}
    main, *params = value.split(";")
    options: dict[str, str] = {}
    for param in params:
        key, _, value = param.partition("=")
        options[key.strip().lower()] = value.strip().strip('"').lower()
    return main.strip().lower(), options


def _reject_secrets_in_query(request: Request) -> None:
    query = request.scope.get("query_string", b"")
    if not query:
        return
    names = {
        name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    }
    if names & SECRET_PARAMETERS:
        raise InvalidRequestError(
            "Credentials must not be sent in the URL query string."
        )


def _unquote(text: str) -> str:
    """``unquote_plus(text, errors="strict")``, skipping the work when there is nothing to unquote."""
    if "+" in text:
        text = text.replace("+", " ")
    if "%" in text:
        text = unquote(text, errors="strict")
    return text


def _form_pairs(text: str) -> list[tuple[str, str]]:
    """What ``parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)`` returns.

    Written out because most names and values have nothing to unquote, and the token endpoint and
    introspection parse a form on every request.

    Raises:
        ValueError: more than ``MAX_FIELDS`` fields, or a percent-escape that is not UTF-8.
    """
    if text.count("&") >= MAX_FIELDS:
        raise ValueError("Max number of fields exceeded")
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((_unquote(name), _unquote(value)))
    return pairs


def parse_form(body: bytes) -> dict[str, str]:
    """Parse a urlencoded UTF-8 body; repeated parameters are refused, empty ones dropped."""
    try:
        pairs = _form_pairs(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        raise InvalidRequestError(
            "The request body is not valid UTF-8 form data."
        ) from None
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        # NUL is never part of a valid parameter, and Postgres cannot store it in text.
        if "\x00" in name or "\x00" in value:
            raise InvalidRequestError("The request contains a NUL character.")
        if name in seen:
            shown = f"'{name}' " if name in KNOWN_PARAMETERS else ""
            raise InvalidRequestError(f"Parameter {shown}is repeated.")
        seen.add(name)
        if value != "":
            form[name] = value
    return form


async def read_form(request: Request) -> dict[str, str]:
    """Read the body of a token-style POST.

    Raises:
        InvalidRequestError: wrong content type or charset, invalid UTF-8, repeated parameter, or a secret in
            the query string.
    """
    _reject_secrets_in_query(request)
    media_type, options = _content_type(request.headers)
    if media_type != FORM_TYPE:
        raise InvalidRequestError(f"The content type must be {FORM_TYPE}.")
    if options.get("charset", "utf-8") not in {"utf-8", "utf8"}:
        raise InvalidRequestError("The request body must be UTF-8.")
    return parse_form(await request.body())


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClientError(
            "Malformed Basic credentials.", used_basic=True
        ) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidClientError("Malformed Basic credentials.", used_basic=True)
    # RFC 6749 §2.3.1: both halves were form-urlencoded before being joined and base64-encoded.
    return unquote_plus(client_id), unquote_plus(secret)


def client_credentials_from(
    headers: Headers, form: Mapping[str, str]
) -> ClientCredentials:
    """Work out how the client authenticated: Basic, post, or not at all (public client).

    Raises:
        InvalidRequestError: more than one method, or ``client_id`` disagreeing with Basic (RFC 6749 §2.3).
        InvalidClientError: malformed Basic credentials (401 with a challenge).
    """
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        client_id, secret = _basic_credentials(value)
        if "client_secret" in form:
            raise InvalidRequestError("Use only one client authentication method.")
        if form.get("client_id", client_id) != client_id:
            raise InvalidRequestError(
                "'client_id' does not match the Basic credentials."
            )
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if "client_secret" in form:
        return ClientCredentials(
            form.get("client_id"), form["client_secret"], "client_secret_post"
        )
    return ClientCredentials(form.get("client_id"), None, "none")
