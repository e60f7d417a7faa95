"""Run the ``oauth-service`` CLI in-process against the test database (for the operations tests)."""

from collections.abc import Awaitable, Callable

import anyio.to_thread
import pytest

from oauth_service.cli import main
from tests.conftest import ISSUER

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


def cli_runner(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """Return ``run(*argv) -> (exit code, stdout, stderr)``; ``main`` runs in a worker thread (it calls
    ``asyncio.run``). Stderr keeps only non-JSON lines (a log handler left by another test may write some).
    """
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("OAUTH_ISSUER", ISSUER)

    async def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await anyio.to_thread.run_sync(main, list(argv))
        out, err = capsys.readouterr()
        err = "".join(
            line
            for line in err.splitlines(keepends=True)
            if not line.startswith('{"ts"')
        )
        return code, out, err

    return run
