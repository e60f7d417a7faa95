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
    "authorization_code (openid)",
    "introspection",
    "/api/v1/me (JWT)",
    "userinfo",
    "password",
}


@pytest.fixture
def admin_dsn() -> tuple[str, str]:
    """The admin DSN, and a benchmark database named after the test database (runs side by side never share)."""
    url = os.environ["TEST_DATABASE_URL"]  # the postgres marker guarantees it
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("no wrk: `make tools` installs it (apt-get install wrk)")
        pytest.skip("no wrk: run `make tools` (apt-get install wrk)")
    base, database = url.split("://", 1)[1].rsplit("/", 1)
    return f"postgresql://{base}/postgres", f"{database}_bench_smoke"


def test_bench_smoke_measures_every_scenario_without_errors(
    admin_dsn: tuple[str, str], tmp_path: Path
) -> None:
    dsn, database = admin_dsn
    status = run.main(
        [
            "--smoke",
            "--admin-dsn",
            dsn,
            "--database",
            database,
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
    # The openid redemption is judged against plain ones run just before and just after it, on their own pools.
    openid = next(r for r in rows if r["scenario"] == "authorization_code (openid)")
    assert [r["scenario"] for r in openid["reference_runs"]] == [
        "authorization_code",
        "authorization_code",
    ]
    for reference in openid["reference_runs"]:
        assert reference["rps"] > 0
        assert reference["non_2xx"] == 0
        assert reference["socket_errors"] == 0
        assert not reference["pool_exhausted"]
    assert openid["reference_runs_rps"] == [r["rps"] for r in openid["reference_runs"]]
