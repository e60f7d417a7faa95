"""Opaque tokens: 256 bits from ``secrets``, stored as SHA-256, compared in constant time."""

import hashlib
import re

from oauth_service.crypto.tokens import (
    constant_time_equals,
    new_opaque_token,
    token_hash,
    verify_token_hash,
)


def test_new_opaque_token_is_urlsafe_256_bits_and_unique() -> None:
    tokens = {new_opaque_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)


def test_token_hash_is_hex_sha256() -> None:
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert token_hash("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_token_hash_accepts_lone_surrogates_without_error() -> None:
    assert len(token_hash("\udcff")) == 64


def test_verify_token_hash_matches_only_the_original() -> None:
    token = new_opaque_token()
    stored = token_hash(token)
    assert verify_token_hash(token, stored)
    assert not verify_token_hash(token + "x", stored)
    assert not verify_token_hash("", stored)


def test_constant_time_equals() -> None:
    assert constant_time_equals("same", "same")
    assert not constant_time_equals("same", "Same")
    assert not constant_time_equals("short", "longer value")
    assert constant_time_equals("ünï", "ünï")
