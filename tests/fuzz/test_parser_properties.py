"""Hypothesis properties of the parsers an attacker feeds directly (bounded, deterministic examples).

Urlencoded bodies (RFC 6749 §3.2), scope strings (§3.3), HTTP Basic client credentials (§2.3.1), redirect URI matching (§3.1.2.3,
RFC 8252 §7.3, RFC 9700 §4.1.3) and PKCE verifiers and challenges (RFC 7636 §4.1, §4.2, §4.6). Each parser
either returns a well-formed value or raises its OAuth error, never anything else.
"""

import base64
import re
import string
from urllib.parse import parse_qsl, quote_plus, urlsplit, urlunsplit

from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from oauth_service.api.forms import (
    KNOWN_PARAMETERS,
    MAX_FIELDS,
    client_credentials_from,
    parse_form,
)
from oauth_service.oauth.errors import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
)
from oauth_service.oauth.models import Client
from oauth_service.oauth.pkce import (
    is_valid_verifier,
    s256_challenge,
    validate_challenge,
    verify_code_verifier,
)
from oauth_service.oauth.redirect_uris import resolve_redirect_uri
from oauth_service.oauth.scopes import format_scope, parse_scope

BOUNDED = settings(max_examples=200, derandomize=True, database=None, deadline=None)

SCOPE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
scope_tokens = st.text(alphabet=SCOPE_CHARS, min_size=1, max_size=20)
VERIFIER_CHARS = string.ascii_letters + string.digits + "-._~"
verifiers = st.text(alphabet=VERIFIER_CHARS, min_size=43, max_size=128)
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_URI_SAFE = re.compile(r"[\x21-\x7e]+")


@BOUNDED
@given(st.frozensets(scope_tokens, max_size=8))
def test_scope_format_then_parse_round_trips(scopes: frozenset[str]) -> None:
    assert parse_scope(format_scope(scopes)) == scopes


@BOUNDED
@given(st.text(max_size=80))
@example("read\n")
@example("read\x00 write")
def test_scope_parse_returns_only_valid_tokens_or_invalid_scope(raw: str) -> None:
    try:
        scopes = parse_scope(raw)
    except InvalidScopeError:
        return
    assert all(_SCOPE_TOKEN.fullmatch(token) for token in scopes)


def _parse_form_with_parse_qsl(body: bytes) -> dict[str, str]:
    """``parse_form`` as it was written on ``parse_qsl``: the reference its own splitting must agree with."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        raise InvalidRequestError(
            "The request body is not valid UTF-8 form data."
        ) from None
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidRequestError("The request contains a NUL character.")
        if name in seen:
            shown = f"'{name}' " if name in KNOWN_PARAMETERS else ""
            raise InvalidRequestError(f"Parameter {shown}is repeated.")
        seen.add(name)
        if value != "":
            form[name] = value
    return form


def _outcome(parse: object, body: bytes) -> object:
    try:
        return parse(body)  # type: ignore[operator]
    except InvalidRequestError as exc:
        return ("invalid_request", exc.description)


form_bodies = st.one_of(
    st.binary(max_size=80),
    st.text(alphabet="ab_=&+%20FfC3xé\x00 ;", max_size=80).map(str.encode),
    st.lists(
        st.sampled_from(
            ["a=1", "a=", "b", "=", "&", "%41=%42", "c=%E9", "d=%C3%A9", "+=+"]
        ),
        max_size=70,
    ).map(lambda parts: "&".join(parts).encode()),
)


@BOUNDED
@given(form_bodies)
@example(b"&" * (MAX_FIELDS - 1))
@example(b"&" * MAX_FIELDS)
@example(b"a=1&a=%ZZ&b=%FF")
@example(b"scope=read+write%2Bx&grant_type=client_credentials")
def test_form_parsing_agrees_with_parse_qsl(body: bytes) -> None:
    assert _outcome(parse_form, body) == _outcome(_parse_form_with_parse_qsl, body)


def _basic(client_id: str, secret: str) -> Headers:
    joined = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return Headers(
        {"authorization": "Basic " + base64.b64encode(joined.encode()).decode()}
    )


@BOUNDED
@given(st.text(min_size=1, max_size=40), st.text(max_size=40))
def test_basic_credentials_round_trip_any_id_and_secret(
    client_id: str, secret: str
) -> None:
    credentials = client_credentials_from(_basic(client_id, secret), {})
    assert (credentials.client_id, credentials.client_secret) == (client_id, secret)
    assert credentials.method == "client_secret_basic"


@BOUNDED
@given(st.text(max_size=120))
@example("Basic ")
@example("Basic Og==")  # ":" only
@example("Basic //79")  # not UTF-8
@example("basic    YTpi   ")
def test_basic_header_garbage_is_invalid_client_or_parsed(value: str) -> None:
    try:
        headers = Headers(raw=[(b"authorization", value.encode("latin-1", "replace"))])
        credentials = client_credentials_from(headers, {})
    except (InvalidClientError, InvalidRequestError):
        return
    assert credentials.client_id is None or credentials.client_id != ""


REGISTERED = (
    "https://app.example/cb",
    "http://127.0.0.1/native",
    "com.example.app:/oauth",
)
CLIENT = Client(
    "c", "C", True, frozenset({"authorization_code"}), REGISTERED, frozenset()
)


def _without_port(uri: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(
        (parts.scheme, parts.hostname or "", parts.path, parts.query, parts.fragment)
    )


uri_variants = st.sampled_from(REGISTERED).flatmap(
    lambda base: st.one_of(
        st.just(base),
        st.builds(lambda suffix: base + suffix, st.text(max_size=12)),
        st.builds(lambda prefix: prefix + base, st.text(max_size=6)),
        st.builds(
            lambda port: base.replace("127.0.0.1", f"127.0.0.1:{port}"),
            st.integers(0, 99999),
        ),
    )
)


@BOUNDED
@given(uri_variants | st.text(max_size=60))
@example("http://127.0.0.1:5000/native\n")
@example("http://127.0.0.1:5000/native#frag")
@example("https://app.example/cb/../evil")
@example("https://APP.example/cb")
def test_redirect_uri_matches_exactly_or_loopback_port_only(requested: str) -> None:
    try:
        resolved = resolve_redirect_uri(CLIENT, requested)
    except InvalidRequestError:
        return
    assert resolved == requested
    assert _URI_SAFE.fullmatch(resolved), (
        "a matched redirect_uri must have no whitespace or controls"
    )
    if resolved not in REGISTERED:
        assert _without_port(resolved) == "http://127.0.0.1/native"


@BOUNDED
@given(verifiers, verifiers)
def test_pkce_s256_accepts_its_verifier_and_refuses_others(
    verifier: str, other: str
) -> None:
    challenge = s256_challenge(verifier)
    assert validate_challenge(challenge, "S256", allow_plain=False) == (
        challenge,
        "S256",
    )
    assert verify_code_verifier(verifier, challenge, "S256", allow_plain=False)
    if other != verifier:
        assert not verify_code_verifier(other, challenge, "S256", allow_plain=False)
    # plain is refused unless enabled: no downgrade to comparing the challenge itself.
    assert not verify_code_verifier(challenge, challenge, "plain", allow_plain=False)


@BOUNDED
@given(st.text(max_size=140), st.sampled_from(["S256", "plain", "none", ""]))
@example("a" * 43 + "\n", "S256")
@example("é" * 43, "S256")
def test_pkce_verifier_syntax_is_exact_and_never_raises(
    verifier: str, method: str
) -> None:
    valid = bool(re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier))
    assert is_valid_verifier(verifier) is valid
    assert verify_code_verifier(verifier, "x" * 43, method, allow_plain=True) is False
