"""Full flows with every log line captured: audit events are emitted, and no secret ever reaches a log line.

Covers issue 6 items 6 and 7 (RFC 9700 §4.14.2 reuse, RFC 6749 §4.1.2 code replay, RFC 7009 revocation): the
password grant, code + PKCE through the pages, refresh rotation and reuse, code replay, revocation,
introspection and the admin API, with the root logger at DEBUG.
"""

import base64
import re
from typing import Any

import httpx
from fastapi import FastAPI

from oauth_service.observability.logs import is_secret_name
from oauth_service.runtime import Runtime
from tests.authorization_helpers import (
    CALLBACK,
    authorize_through_pages,
    authorize_url,
    new_pkce,
    query_of,
    submit_login,
)
from tests.factories import make_client, make_user
from tests.security.conftest import AppFactory, LogCapture, http_client

TOKEN = "/oauth/token"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "admin-Pa55word-never-logged"
USER_EMAIL = "alice@example.com"
USER_PASSWORD = "alice-Pa55word-never-logged"
IP = "198.51.100.23"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def _clients(runtime: Runtime) -> str:
    """A confidential back-end client (password, refresh, admin scope) and a public app; returns the secret."""
    await make_user(runtime, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, is_admin=True)
    await make_user(runtime, email=USER_EMAIL, password=USER_PASSWORD)
    _, secret = await make_client(
        runtime,
        client_id="backend",
        grant_types=("password", "refresh_token", "client_credentials"),
        scopes=("read", "write", "admin"),
    )
    await make_client(
        runtime,
        client_id="mobile",
        is_public=True,
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(CALLBACK,),
    )
    assert secret is not None
    return secret


async def _code_flow(http: httpx.AsyncClient, secrets: list[str]) -> dict[str, Any]:
    """Code + PKCE through the pages (with one failed login first), exchange, then replay the code."""
    verifier, challenge = new_pkce()
    params = {
        "response_type": "code",
        "client_id": "mobile",
        "redirect_uri": CALLBACK,
        "scope": "read",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    first = await http.get(authorize_url(**params))
    failed = await submit_login(
        http, first.headers["location"], USER_EMAIL, "wrong-Pa55"
    )
    assert failed.status_code == 400
    response = await authorize_through_pages(
        http, authorize_url(**params), email=USER_EMAIL, password=USER_PASSWORD
    )
    code = query_of(response.headers["location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "mobile",
        "code_verifier": verifier,
    }
    tokens = await http.post(TOKEN, data=form)
    assert tokens.status_code == 200, tokens.text
    replay = await http.post(TOKEN, data=form)
    assert replay.json()["error"] == "invalid_grant"
    secrets += [code, verifier, "wrong-Pa55", *http.cookies.values()]
    body: dict[str, Any] = tokens.json()
    return body


async def _run_flows(app: FastAPI, secret: str) -> list[str]:
    """Drive every flow; return every secret that crossed the wire."""
    secrets = [secret, ADMIN_PASSWORD, USER_PASSWORD]
    backend = _basic("backend", secret)
    async with http_client(app, ip=IP) as http:
        grant = {
            "grant_type": "password",
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
        }
        admin = (
            await http.post(
                TOKEN, data={**grant, "scope": "admin read"}, headers=backend
            )
        ).json()
        secrets += [admin["access_token"], admin["refresh_token"]]
        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": admin["refresh_token"],
        }
        rotated = (await http.post(TOKEN, data=refresh, headers=backend)).json()
        secrets += [rotated["access_token"], rotated["refresh_token"]]
        reuse = await http.post(TOKEN, data=refresh, headers=backend)
        assert reuse.json()["error"] == "invalid_grant"
        mobile = await _code_flow(http, secrets)
        secrets += [mobile["access_token"], mobile["refresh_token"]]
        introspect = {"token": mobile["access_token"]}
        assert (
            await http.post("/oauth/introspect", data=introspect, headers=backend)
        ).status_code == 200
        revoke = {"token": mobile["refresh_token"], "client_id": "mobile"}
        assert (await http.post("/oauth/revoke", data=revoke)).status_code == 200
        fresh = (
            await http.post(TOKEN, data={**grant, "scope": "admin"}, headers=backend)
        ).json()
        secrets.append(fresh["access_token"])
        bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
        created = await http.post(
            "/admin/clients",
            json={
                "client_name": "Billing",
                "grant_types": ["client_credentials"],
                "scope": "read",
            },
            headers=bearer,
        )
        assert created.status_code == 201, created.text
        secrets.append(created.json()["client_secret"])
        user = {"email": "bob@example.com", "password": "bob-Pa55word-never-logged"}
        assert (
            await http.post("/admin/users", json=user, headers=bearer)
        ).status_code == 201
        secrets.append(user["password"])
    return secrets


async def test_full_flows_never_log_a_secret(
    make_app: AppFactory, captured_logs: LogCapture
) -> None:
    app = await make_app(log_level="DEBUG")
    secrets = await _run_flows(app, await _clients(app.state.runtime))
    text = captured_logs.text
    assert len(captured_logs.lines()) > 20  # the capture did see the flows
    for secret in secrets:
        assert len(secret) >= 8
        assert secret not in text, "a secret reached the logs"
    # No JWT-looking string at all (header.payload.signature), whichever token it was.
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", text)


async def test_full_flows_emit_audit_events_with_context(
    make_app: AppFactory, captured_logs: LogCapture
) -> None:
    app = await make_app()
    await _run_flows(app, await _clients(app.state.runtime))
    issued = captured_logs.events("token.issued")
    assert {(e["grant_type"], e["client_id"]) for e in issued} == {
        ("password", "backend"),
        ("refresh_token", "backend"),
        ("authorization_code", "mobile"),
    }
    assert all(e["subject"] and e["jti"] for e in issued)
    (reuse,) = captured_logs.events("refresh.reuse_detected")
    assert (reuse["client_id"], reuse["reason"], reuse["family_revoked"]) == (
        "backend",
        "reuse",
        True,
    )
    (replay,) = captured_logs.events("code.replay")
    assert (replay["client_id"], replay["issued_revoked"]) == ("mobile", True)
    (revocation,) = captured_logs.events("token.revocation")
    assert revocation["client_id"] == "mobile"
    (failed,) = captured_logs.events("login.failed")
    assert failed["via"] == "login_form"
    assert {e["via"] for e in captured_logs.events("login.succeeded")} == {
        "login_form",
        "password_grant",
    }
    audit_lines = [line for line in captured_logs.lines() if line.get("audit")]
    for line in audit_lines:
        assert line["client_ip"] == IP
        assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
        assert "dropped_fields" not in line
        assert not [key for key in line if is_secret_name(key)]


async def test_client_auth_failure_is_audited_without_the_secret(
    make_app: AppFactory, captured_logs: LogCapture
) -> None:
    app = await make_app()
    await _clients(app.state.runtime)
    async with http_client(app, ip=IP) as http:
        response = await http.post(
            TOKEN,
            data={"grant_type": "client_credentials"},
            headers=_basic("backend", "guessed-secret-value"),
        )
    assert response.status_code == 401
    (event,) = captured_logs.events("client_auth.failed")
    assert (event["attempted_client_id"], event["method"]) == (
        "backend",
        "client_secret_basic",
    )
    assert "guessed-secret-value" not in captured_logs.text
