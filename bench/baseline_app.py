"""The practical ceiling: a bare FastAPI app on the service's own uvicorn settings (issue 7, deliverable 2).

``POST /token`` reads the same ``application/x-www-form-urlencoded`` body (``parse_qsl``) and signs the same
RS256 (or ES256) access-token claims with a key parsed once, through python-jose as the service does, and
answers the same JSON shape; it does nothing else (no client authentication, no database, no middleware).
``GET /get`` answers a small JSON body without signing anything: the figure introspection and ``/api/v1/me``
are compared with. Run it with ``python -m bench.baseline_app --port 8100 --workers 2``.
"""

import argparse
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from oauth_service.cli.server import uvicorn_options
from oauth_service.crypto.jwt import KeySet, SigningKey, generate_key
from oauth_service.settings import Settings, load_settings

ISSUER = "http://127.0.0.1"


def create_app() -> FastAPI:
    """Build the baseline app with a freshly generated key of the configured algorithm."""
    settings = load_settings()
    kid, pem, _public = generate_key(settings.signing_alg)
    keys = KeySet(SigningKey.from_pem(kid, settings.signing_alg, pem))
    app = FastAPI()

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode("utf-8")))
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": form.get("client_id", "bench-client"),
            "aud": ISSUER,
            "exp": now + 600,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "client_id": "bench-client",
            "scope": form.get("scope", "read write"),
        }
        body = {
            "access_token": keys.sign(claims),
            "token_type": "Bearer",
            "expires_in": 600,
            "scope": claims["scope"],
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @app.get("/get")
    async def get() -> JSONResponse:
        return JSONResponse({"sub": "bench-client", "client_id": "bench-client"})

    return app


def main() -> None:
    """Serve the baseline with the options ``oauth-service serve`` uses."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    settings: Settings = load_settings()
    options = uvicorn_options(
        settings, host="127.0.0.1", port=args.port, workers=args.workers
    )
    uvicorn.run("bench.baseline_app:create_app", **options)


if __name__ == "__main__":
    main()
