"""The benchmark keeps working: ``bench.run --smoke`` (1 s per scenario at c=4) measures every scenario.

No timing is asserted (the machine is shared); only that each scenario produced numbers, that no answer was a
non-2xx, that single-use pools were not exhausted, and that the results JSON was written.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from bench import run
from tests.live_server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SCENARIOS = {
    "baseline POST (form + sign)",
    "baseline GET (no signing)",
    "client_credentials",
    "refresh_token",
    "authorization_code",
    "introspection",
    "/api/v1/me (JWT)",
    "password",
}


@pytest.fixture
def admin_dsn() -> str:
    url = os.environ["TEST_DATABASE_URL"]  # the postgres marker guarantees it
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("no wrk: `make tools` installs it (apt-get install wrk)")
        pytest.skip("no wrk: run `make tools` (apt-get install wrk)")
    base = url.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql://{base}/postgres"


def test_bench_smoke_measures_every_scenario_without_errors(
    admin_dsn: str, tmp_path: Path
) -> None:
    status = run.main(
        [
            "--smoke",
            "--admin-dsn",
            admin_dsn,
            "--database",
            "oauth_bench_smoke",
            "--port",
            str(free_port()),
            "--baseline-port",
            str(free_port()),
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    (result,) = tmp_path.glob("bench-*.json")
    doc = json.loads(result.read_text())
    rows = doc["rows"]
    assert {row["scenario"] for row in rows} == SCENARIOS
    for row in rows:
        assert row["rps"] > 0, row["scenario"]
        assert row["non_2xx"] == 0, row["scenario"]
        assert row["socket_errors"] == 0, row["scenario"]
        assert not row.get("pool_exhausted"), row["scenario"]
    assert all(mb > 0 for mb in doc["worker_rss_mb"])
    assert doc["worker_malloc_arena_max"] == ["1", "1"]  # set by `oauth-service serve`
    password = next(row for row in rows if row["scenario"] == "password")
    assert password["healthz"]["samples"] > 0
