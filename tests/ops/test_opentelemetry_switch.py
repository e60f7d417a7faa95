"""``OAUTH_OPENTELEMETRY``: FastAPI's native OpenTelemetry is consulted per request only when switched on.

With it off (the default) a request never asks OpenTelemetry for its global providers, which FastAPI
otherwise does on every request even when none is configured.
"""

from pathlib import Path

import httpx
import opentelemetry.trace
import pytest

from oauth_service.app import create_app
from oauth_service.settings import load_settings
from tests.conftest import make_settings


async def _lookups_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, enabled: bool
) -> int:
    real = opentelemetry.trace.get_tracer_provider
    calls = 0

    def counted() -> opentelemetry.trace.TracerProvider:
        nonlocal calls
        calls += 1
        return real()

    monkeypatch.setattr(opentelemetry.trace, "get_tracer_provider", counted)
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", opentelemetry=enabled
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/healthz")).status_code == 200
    return calls


async def test_off_by_default_no_provider_lookup_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAUTH_OPENTELEMETRY", raising=False)
    assert load_settings().opentelemetry is False
    assert await _lookups_per_request(tmp_path, monkeypatch, enabled=False) == 0


async def test_switched_on_fastapi_consults_the_global_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await _lookups_per_request(tmp_path, monkeypatch, enabled=True) > 0
