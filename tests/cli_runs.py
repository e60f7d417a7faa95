"""Running ``oauth-service`` against a live server, for the ``perform`` and demo-command tests; the demo seed."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import anyio.to_thread
import httpx
import pytest

from oauth_service.app import create_app
from oauth_service.cli import main
from oauth_service.db.demo import DemoCredentials, seed_demo
from oauth_service.runtime import Runtime
from tests.conftest import make_settings
from tests.live_server import free_port, serve_in_thread

Result = tuple[int, str, str]


@contextmanager
def live_service(db_url: str) -> Iterator[str]:
    """The service under uvicorn on a free loopback port, its issuer its own address; yields that URL."""
    port = free_port()
    app = create_app(make_settings(db_url, issuer=f"http://127.0.0.1:{port}"))
    with serve_in_thread(app, port, name="cli-target") as url:
        yield url


async def run_cli(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> Result:
    """Run ``main(argv)`` in a worker thread (its HTTP calls block); return (code, stdout, stderr)."""
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(main, list(argv))
    out, err = capsys.readouterr()
    # The server thread's JSON log records are not the command's output.
    err = "".join(
        line for line in err.splitlines(keepends=True) if not line.startswith('{"ts"')
    )
    return code, out, err


def report_fields(out: str) -> dict[str, str]:
    """The ``name: value`` lines of ``perform``'s human-readable report (the indented claims left out)."""
    return {
        name: value.strip()
        for name, _, value in (line.partition(":") for line in out.splitlines())
        if not name.startswith(" ") and value
    }


async def me(server: str, access_token: str) -> dict[str, object]:
    """``GET /api/v1/me`` with ``access_token``, which must be accepted."""
    async with httpx.AsyncClient(base_url=server, timeout=10) as http:
        response = await http.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}
        )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def seed_demo_data(runtime: Runtime) -> DemoCredentials:
    """Seed the demo user and clients as ``oauth-service demo`` does; return their credentials."""
    async with runtime.sessionmaker() as session:
        creds = await seed_demo(
            session,
            hasher=runtime.passwords,
            known=DemoCredentials(),
            issuer=runtime.settings.issuer,
        )
        await session.commit()
    return creds
