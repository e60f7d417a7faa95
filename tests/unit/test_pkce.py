"""PKCE (RFC 7636): challenge validation at the authorization endpoint, verifier check at the token endpoint."""

import pytest

from oauth_service.oauth import pkce
from oauth_service.oauth.errors import InvalidRequestError

# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_challenge_matches_rfc_7636_appendix_b() -> None:
    assert pkce.s256_challenge(RFC_VERIFIER) == RFC_CHALLENGE


@pytest.mark.parametrize(
    ("verifier", "valid"),
    [
        ("a" * 43, True),
        ("a" * 128, True),
        ("A-._~z09" * 6, True),
        ("a" * 42, False),
        ("a" * 129, False),
        ("a" * 42 + "+", False),
        ("a" * 42 + "=", False),
        ("é" * 43, False),
    ],
    ids=["min", "max", "unreserved", "short", "long", "plus", "equals", "non-ascii"],
)
def test_verifier_syntax_is_43_to_128_unreserved(verifier: str, valid: bool) -> None:
    assert pkce.is_valid_verifier(verifier) is valid


def test_validate_challenge_s256_returns_challenge_and_method() -> None:
    assert pkce.validate_challenge(RFC_CHALLENGE, "S256", allow_plain=False) == (
        RFC_CHALLENGE,
        "S256",
    )


@pytest.mark.parametrize(
    ("challenge", "method", "allow_plain", "description"),
    [
        (RFC_CHALLENGE, None, False, "code_challenge_method is required; use S256."),
        (RFC_CHALLENGE, "plain", False, "Unsupported code_challenge_method; use S256."),
        (RFC_CHALLENGE, "S512", True, "Unsupported code_challenge_method; use S256."),
        (
            "short",
            "S256",
            False,
            "code_challenge must be 43 base64url characters for S256.",
        ),
        (
            RFC_CHALLENGE + "=",
            "S256",
            False,
            "code_challenge must be 43 base64url characters for S256.",
        ),
        (
            "x" * 42,
            "plain",
            True,
            "code_challenge must be 43 to 128 unreserved characters.",
        ),
    ],
    ids=[
        "absent-method-means-plain",
        "plain-disabled",
        "unknown-method",
        "s256-short",
        "s256-padded",
        "plain-short",
    ],
)
def test_validate_challenge_bad_input_is_invalid_request(
    challenge: str, method: str | None, allow_plain: bool, description: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        pkce.validate_challenge(challenge, method, allow_plain=allow_plain)
    assert caught.value.description == description


def test_validate_challenge_plain_when_enabled_is_accepted() -> None:
    assert pkce.validate_challenge("p" * 43, None, allow_plain=True) == (
        "p" * 43,
        "plain",
    )
    assert pkce.validate_challenge("p" * 43, "plain", allow_plain=True) == (
        "p" * 43,
        "plain",
    )


def test_verify_s256_with_matching_verifier_is_true() -> None:
    assert pkce.verify_code_verifier(
        RFC_VERIFIER, RFC_CHALLENGE, "S256", allow_plain=False
    )


def test_verify_s256_with_other_verifier_is_false() -> None:
    assert not pkce.verify_code_verifier(
        "b" * 43, RFC_CHALLENGE, "S256", allow_plain=False
    )


def test_verify_with_malformed_verifier_is_false_even_if_plain_matches() -> None:
    assert not pkce.verify_code_verifier("short", "short", "plain", allow_plain=True)


def test_verify_plain_only_when_enabled() -> None:
    verifier = "v" * 50
    assert pkce.verify_code_verifier(verifier, verifier, "plain", allow_plain=True)
    assert not pkce.verify_code_verifier(verifier, verifier, "plain", allow_plain=False)
