"""The token response (RFC 6749 §5.1): ``TokenSet`` carries ``token_type`` and further members (``extra``)."""

import pytest

from oauth_service.oauth.issuer import MintedToken, TokenIssuer
from oauth_service.oauth.models import TokenSet
from tests.fakes import T0


def test_token_set_body_has_bearer_token_type_by_default() -> None:
    body = TokenSet(access_token="at", expires_in=600, scope="read").as_dict()
    assert body == {
        "access_token": "at",
        "token_type": "Bearer",
        "expires_in": 600,
        "scope": "read",
    }


def test_token_set_body_carries_token_type_refresh_token_and_extra_members() -> None:
    tokens = TokenSet(
        access_token="at",
        expires_in=600,
        scope="openid read",
        token_type="DPoP",
        refresh_token="rt",
        extra={"id_token": "eyJ.id.token", "issued_token_type": "urn:x"},
        jti="j1",
        subject="u1",
        client_id="spa",
    )
    assert tokens.as_dict() == {
        "access_token": "at",
        "token_type": "DPoP",
        "expires_in": 600,
        "scope": "openid read",
        "refresh_token": "rt",
        "id_token": "eyJ.id.token",
        "issued_token_type": "urn:x",
    }


def test_token_set_keeps_secrets_and_audit_fields_out_of_repr_and_body() -> None:
    tokens = TokenSet(
        access_token="secret-at",
        expires_in=1,
        scope="",
        refresh_token="secret-rt",
        extra={"id_token": "secret-id"},
        jti="j1",
        subject="u1",
        client_id="spa",
    )
    assert "secret" not in repr(tokens)
    assert {"jti", "subject", "client_id"}.isdisjoint(tokens.as_dict())


def test_issuer_token_set_is_bearer_with_no_extra_members() -> None:
    minted = MintedToken("at", "j1", T0, 600, subject="u1", client_id="spa")
    tokens = TokenIssuer.token_set(minted, frozenset({"write", "read"}), "rt")
    assert (tokens.token_type, tokens.extra) == ("Bearer", {})
    assert tokens.as_dict() == {
        "access_token": "at",
        "token_type": "Bearer",
        "expires_in": 600,
        "scope": "read write",
        "refresh_token": "rt",
    }
    assert (tokens.jti, tokens.subject, tokens.client_id) == ("j1", "u1", "spa")


@pytest.mark.parametrize("member", ["access_token", "token_type", "refresh_token"])
def test_extra_members_may_not_replace_the_standard_ones(member: str) -> None:
    with pytest.raises(ValueError, match=member):
        TokenSet(access_token="at", expires_in=60, scope="", extra={member: "x"})
