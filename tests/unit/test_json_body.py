"""``JsonBody`` sends the bytes Starlette's ``JSONResponse`` would send for the same content and headers."""

import pytest
from fastapi.responses import JSONResponse

from oauth_service.api.json_body import NO_STORE_HEADERS, JsonBody
from oauth_service.oauth.caching import NO_STORE

CONTENT = {
    "access_token": "eyJ.x.y",
    "token_type": "Bearer",
    "expires_in": 900,
    "scope": "read write",
    "name": "Zoë ✓",  # not ASCII-escaped, as Starlette's
    "aud": ["a", "b"],
    "active": True,
    "missing": None,
}


def test_same_status_headers_and_body_as_jsonresponse() -> None:
    ours = JsonBody(CONTENT, extra=NO_STORE_HEADERS)
    starlette = JSONResponse(CONTENT, headers=NO_STORE)
    assert ours.status_code == starlette.status_code == 200
    assert ours.body == starlette.body
    assert ours.raw_headers == starlette.raw_headers


def test_other_status_and_no_extra_headers() -> None:
    ours = JsonBody({"error": "invalid_request"}, status_code=400)
    starlette = JSONResponse({"error": "invalid_request"}, status_code=400)
    assert (ours.status_code, ours.body, ours.raw_headers) == (
        starlette.status_code,
        starlette.body,
        starlette.raw_headers,
    )


def test_nan_is_refused_as_starlette_refuses_it() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        JsonBody({"x": float("nan")})
