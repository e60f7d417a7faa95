"""A relying party built the way Authlib's docs build one: a Starlette app with ``OAuth().register`` and discovery.

Nothing here knows the provider beyond its issuer URL: endpoints, JWKS and algorithms come from
``/.well-known/openid-configuration``. Authlib validates the ID token (signature via JWKS, ``iss``, ``aud``,
``exp``, ``nonce``, ``at_hash``); the RP then calls UserInfo, refreshes, and logs out (RP-Initiated Logout 1.0).
Its back-channel endpoint validates logout tokens with joserfc, the JOSE library Authlib's client itself uses
(Back-Channel Logout 1.0 §2.6). Every step's outcome lands in ``RpLog`` for the test to read.
"""

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

SCOPE = "openid profile email offline_access"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass
class RpLog:
    """What the RP saw, step by step (each value is the outcome, or ``{"error": ...}``)."""

    steps: dict[str, Any] = field(default_factory=dict)
    logout_tokens: list[dict[str, Any]] = field(default_factory=list)
    backchannel_errors: list[str] = field(default_factory=list)
    # The ``sid`` of every session the RP signed in with: a logout token must name one of them (§2.6 step 6).
    known_sids: set[str] = field(default_factory=set)
    # Set by the back-channel receiver (on the RP server's thread) when a request arrived.
    backchannel_called: threading.Event = field(default_factory=threading.Event)


def _page(text: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>RP</title><p id='status'>{text}</p>")


def _failure(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, OAuthError):
        return {"error": exc.error, "description": exc.description}
    return {"error": type(exc).__name__, "description": str(exc)}


def build_rp(
    *,
    issuer: str,
    base_url: str,
    client_id: str,
    client_secret: str,
    log: RpLog,
) -> Starlette:
    """The RP served at ``base_url``: /login, /callback, /logout, /logged-out, /backchannel."""
    oauth = OAuth()
    provider = oauth.register(
        "provider",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"},
    )

    async def login(request: Request) -> Response:
        # ?prompt=none asks the provider for a silent sign-in (OIDC Core §3.1.2.1).
        extra = (
            {"prompt": request.query_params["prompt"]}
            if "prompt" in request.query_params
            else {}
        )
        response: Response = await provider.authorize_redirect(
            request, f"{base_url}/callback", **extra
        )
        return response

    async def callback(request: Request) -> Response:
        try:
            token = await provider.authorize_access_token(request)
        except (OAuthError, JoseError) as exc:
            log.steps["callback"] = _failure(exc)
            return _page(f"sign-in failed: {exc}")
        id_claims = dict(token["userinfo"])
        log.steps["callback"] = {"token": token, "id_token_claims": id_claims}
        request.session["id_token"] = token["id_token"]
        if "sid" in id_claims:
            log.known_sids.add(id_claims["sid"])
        try:
            log.steps["userinfo"] = dict(await provider.userinfo(token=token))
        except Exception as exc:
            log.steps["userinfo"] = _failure(exc)
        try:
            refreshed = await provider.fetch_access_token(
                grant_type="refresh_token", refresh_token=token["refresh_token"]
            )
            claims = await provider.parse_id_token(refreshed, nonce=None)
            log.steps["refresh"] = {
                "token": refreshed,
                "id_token_claims": None if claims is None else dict(claims),
            }
            if "id_token" in refreshed:
                request.session["id_token"] = refreshed["id_token"]
        except Exception as exc:
            log.steps["refresh"] = _failure(exc)
        return _page("signed in")

    async def logout(request: Request) -> Response:
        try:
            response: Response = await provider.logout_redirect(
                request,
                post_logout_redirect_uri=f"{base_url}/logged-out",
                id_token_hint=request.session.pop("id_token", None),
            )
        except Exception as exc:
            log.steps["logout"] = _failure(exc)
            return _page(f"logout failed: {exc}")
        log.steps["logout"] = {"location": response.headers["location"]}
        return response

    async def logged_out(request: Request) -> Response:
        try:
            data = await provider.validate_logout_response(request)
        except OAuthError as exc:
            log.steps["logged_out"] = _failure(exc)
            return _page(f"logout response refused: {exc}")
        log.steps["logged_out"] = {"state": request.query_params["state"], "data": data}
        return _page("signed out")

    async def backchannel(request: Request) -> Response:
        form = await request.form()
        raw = form.get("logout_token")
        try:
            if not isinstance(raw, str):
                raise ValueError("no logout_token in the form")
            log.logout_tokens.append(await _validate_logout_token(raw))
        except (JoseError, ValueError) as exc:
            log.backchannel_errors.append(f"{type(exc).__name__}: {exc}")
            return PlainTextResponse("invalid logout token", status_code=400)
        finally:
            log.backchannel_called.set()
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    async def _validate_logout_token(raw: str) -> dict[str, Any]:
        """Back-Channel Logout 1.0 §2.6: signature, iss, aud, iat, jti, events, a known sid, no nonce."""
        metadata = await provider.load_server_metadata()
        keys = KeySet.import_key_set(await provider.fetch_jwk_set(force=True))
        token = jwt.decode(
            raw, keys, algorithms=metadata["id_token_signing_alg_values_supported"]
        )
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            iat={"essential": True},
            jti={"essential": True},
            events={"essential": True},
        ).validate(token.claims)
        claims = dict(token.claims)
        if claims["events"] != {BACKCHANNEL_EVENT: {}}:
            raise ValueError(f"events is {claims['events']!r}")
        if "nonce" in claims:
            raise ValueError("a logout token must not carry a nonce")
        if claims.get("sid") not in log.known_sids:
            raise ValueError(f"sid {claims.get('sid')!r} names no session of this RP")
        return {"header": dict(token.header), "claims": claims}

    return Starlette(
        routes=[
            Route("/login", login),
            Route("/callback", callback),
            Route("/logout", logout),
            Route("/logged-out", logged_out),
            Route("/backchannel", backchannel, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=secrets.token_urlsafe(32),
                session_cookie="rp_session",
            )
        ],
    )
