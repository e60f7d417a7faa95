"""The container image and compose stack definitions (issue 8 §1-2): static checks, plus ``docker compose config``."""

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (what the image runs)."""
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_dockerfile_is_multi_stage_on_slim_python() -> None:
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    assert all(args.startswith("python:${PYTHON_VERSION}-slim") for args in froms)
    assert ("ARG", "PYTHON_VERSION=3.11") in instructions()


def test_dockerfile_runtime_runs_as_non_root_user() -> None:
    users = [args for keyword, args in runtime_stage() if keyword == "USER"]
    assert users, "the runtime stage must switch to an unprivileged USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_has_python_healthcheck_on_healthz() -> None:
    (check,) = [args for keyword, args in runtime_stage() if keyword == "HEALTHCHECK"]
    assert "CMD" in check
    assert '"python"' in check
    assert "/healthz" in check
    assert "curl" not in check
    assert "wget" not in check


def test_dockerfile_installs_no_dev_dependencies() -> None:
    text = " ".join(args for _, args in instructions())
    assert "[dev" not in text
    runs = [args for keyword, args in runtime_stage() if keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    assert installs == [
        "pip install --no-index --find-links=/wheels oauth-service && rm -rf /wheels"
    ]


def test_dockerfile_serves_with_configurable_port_and_workers() -> None:
    env = " ".join(args for keyword, args in runtime_stage() if keyword == "ENV")
    assert "PORT=8000" in env
    assert "WORKERS=" in env
    (cmd,) = [args for keyword, args in runtime_stage() if keyword == "CMD"]
    assert (
        'exec oauth-service serve --host 0.0.0.0 --port \\"$PORT\\" --workers \\"$WORKERS\\"'
        in cmd
    )


def test_dockerignore_keeps_build_inputs_and_drops_the_rest() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", "tests", "*.db", ".env"} <= ignored
    assert not {"src", "alembic", "pyproject.toml", "README.md"} & ignored


def test_compose_service_waits_for_healthy_postgres_and_finished_migrations() -> None:
    services = compose()["services"]
    assert services["oauth"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert services["migrate"]["command"] == ["oauth-service", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["postgres"]["image"] == "postgres:16"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert "pgdata" in compose()["volumes"]
    assert services["redis"]["image"] == "redis:7"


def test_compose_service_environment_points_at_postgres_and_redis() -> None:
    env = compose()["services"]["oauth"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://oauth:")
    assert env["DATABASE_URL"].endswith("@postgres:5432/oauth")
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert "OAUTH_ISSUER" in env


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


def test_compose_file_validates_with_docker_compose_config() -> None:
    command = _compose_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail(
                "no docker compose: `make tools` installs it (apt-get install docker-compose)"
            )
        pytest.skip(
            "no docker compose: run `make tools` (apt-get install docker-compose); "
            "the static compose checks above still ran"
        )
    done = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, f"{shlex.join(command)} config: {done.stderr}"
