"""The admin API as ``/openapi.json`` documents it: RFC 7591 client names, every body field described with an example."""

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from oauth_service.api.admin.client_models import (
    ClientCreated,
    ClientIn,
    ClientOut,
    ClientPatch,
    ClientSecret,
)
from oauth_service.api.admin.models import (
    PasswordIn,
    ScopeIn,
    ScopeOut,
    UserIn,
    UserOut,
    UserPatch,
)

REF = "#/components/schemas/"


def _ref_names(node: Any) -> set[str]:
    """Every schema a piece of the document refers to, directly or nested."""
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix(REF)} if "$ref" in node else set()
        for value in node.values():
            found |= _ref_names(value)
        return found
    if isinstance(node, list):
        return set().union(*(_ref_names(v) for v in node)) if node else set()
    return set()


def _admin_body_schemas(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The request and success-response schemas of every /admin route, and those they refer to."""
    schemas: dict[str, dict[str, Any]] = document["components"]["schemas"]
    pending: set[str] = set()
    for path, operations in document["paths"].items():
        if not path.startswith("/admin"):
            continue
        for operation in operations.values():
            pending |= _ref_names(operation.get("requestBody", {}))
            for code, response in operation["responses"].items():
                if code.startswith("2"):
                    pending |= _ref_names(response)
    found: dict[str, dict[str, Any]] = {}
    while pending:
        name = pending.pop()
        if name not in found:
            found[name] = schemas[name]
            pending |= _ref_names(schemas[name])
    return found


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_openapi_admin_bodies_document_every_field_with_an_example(
    openapi: dict[str, Any],
) -> None:
    schemas = _admin_body_schemas(openapi)
    assert {"ClientIn", "ClientPatch", "ClientCreated", "ClientOut", "UserIn"} <= set(
        schemas
    )
    undocumented = [
        f"{name}.{field}: {missing}"
        for name, schema in sorted(schemas.items())
        for field, prop in schema["properties"].items()
        for missing in ("description", "examples")
        if not prop.get(missing)
    ]
    assert undocumented == []
    assert [name for name, s in sorted(schemas.items()) if not s.get("examples")] == []


async def test_openapi_client_bodies_use_rfc7591_names(
    openapi: dict[str, Any],
) -> None:
    schemas = openapi["components"]["schemas"]
    registered = {
        "client_id",
        "client_name",
        "scope",
        "grant_types",
        "redirect_uris",
        "token_endpoint_auth_method",
        "first_party",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
        "backchannel_logout_session_required",
        "client_id_issued_at",
    }
    assert set(schemas["ClientOut"]["properties"]) == registered
    assert set(schemas["ClientCreated"]["properties"]) == registered | {
        "client_secret",
        "client_secret_expires_at",
    }
    assert set(schemas["ClientIn"]["properties"]) == registered - {
        "client_id_issued_at"
    }
    assert set(schemas["ClientPatch"]["properties"]) == registered - {
        "client_id",
        "client_id_issued_at",
    }
    assert schemas["ClientIn"]["properties"]["scope"]["type"] == "string"
    assert schemas["ClientIn"]["properties"]["token_endpoint_auth_method"]["enum"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    # Secret fields are absent, never null, when no secret is issued.
    assert "client_secret" not in schemas["ClientCreated"].get("required", [])
    assert schemas["ClientCreated"]["properties"]["client_secret"]["type"] == "string"


@pytest.mark.parametrize(
    "model",
    [
        ClientIn,
        ClientPatch,
        ClientOut,
        ClientCreated,
        ClientSecret,
        UserIn,
        UserPatch,
        PasswordIn,
        UserOut,
        ScopeIn,
        ScopeOut,
    ],
    ids=lambda model: model.__name__,
)
def test_admin_model_examples_are_valid_bodies(model: type[BaseModel]) -> None:
    examples = model.model_json_schema()["examples"]
    assert examples
    for example in examples:
        assert model.model_validate(example).model_dump(exclude_unset=True) == example
