"""The layering rules of the architecture, enforced on every module's imports (STYLE.md §3.3).

* ``oauth`` (the protocol core) imports only the standard library, ``oauth_service.oauth``, ``oauth_service.crypto``
  and ``oauth_service.observability.logs`` (stdlib-only structured logging, for audit events) — no web
  framework, ORM or JOSE.
* ``oidc`` (OpenID Connect) is protocol core too, built on ``oauth``: the same allowance plus itself, so ID tokens,
  claims and logout rules are testable without a web framework or a database.
* ``observability`` (logs, metrics) is a leaf every layer reports through: no web framework, and nothing of the
  protocol core, the database layer, the API, the runtime or the app wiring.
* ``crypto`` knows nothing of OAuth, the database or the web.
* ``db`` never imports the web layer; only ``api``, ``app`` and ``resource_server/fastapi.py`` import FastAPI or
  Starlette.
* ``jose`` is imported by ``crypto/jwt.py`` alone.
* The resource kit (``resource_server``) runs in other projects' APIs: nothing of the server's database,
  settings, app wiring or ``api``. Only its ``fastapi.py`` imports FastAPI, so importing the package does not.
* The admin API (``api/admin``) is reached through its router alone: no module outside it imports its modules,
  and it uses no private (``_``) name of another ``api`` module.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "oauth_service"
STDLIB = frozenset(sys.stdlib_module_names)
CORE_ALLOWED = (
    "oauth_service.oauth",
    "oauth_service.crypto",
    "oauth_service.observability.logs",
)
WEB = ("fastapi", "starlette")
OBSERVABILITY_FORBIDDEN = (
    *WEB,
    "oauth_service.api",
    "oauth_service.db",
    "oauth_service.oauth",
    "oauth_service.runtime",
    "oauth_service.app",
)
RESOURCE_KIT = "resource_server"
ADMIN_API = "oauth_service.api.admin"
SERVER_ONLY = (
    "oauth_service.db",
    "oauth_service.api",
    "oauth_service.app",
    "oauth_service.runtime",
    "oauth_service.settings",
    "sqlalchemy",
    "sqlmodel",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def _third_party(name: str) -> bool:
    return name.split(".")[0] not in STDLIB and not name.startswith("oauth_service")


@pytest.mark.parametrize("path", _modules("oauth"), ids=lambda p: p.name)
def test_core_module_imports_only_stdlib_core_and_crypto(path: Path) -> None:
    offending = {
        name
        for name in _imports(path)
        if _third_party(name)
        or (name.startswith("oauth_service") and not name.startswith(CORE_ALLOWED))
    }
    assert offending == set()


@pytest.mark.parametrize("path", _modules("oidc"), ids=lambda p: p.name)
def test_oidc_module_imports_only_stdlib_core_and_crypto(path: Path) -> None:
    offending = {
        name
        for name in _imports(path)
        if _third_party(name)
        or (
            name.startswith("oauth_service")
            and not name.startswith((*CORE_ALLOWED, "oauth_service.oidc"))
        )
    }
    assert offending == set()


@pytest.mark.parametrize("path", _modules("crypto"), ids=lambda p: p.name)
def test_crypto_module_knows_no_oauth_db_or_web(path: Path) -> None:
    offending = {
        name
        for name in _imports(path)
        if name.startswith(
            ("oauth_service.oauth", "oauth_service.db", "oauth_service.api", *WEB)
        )
    }
    assert offending == set()


@pytest.mark.parametrize("path", _modules("db"), ids=lambda p: p.name)
def test_db_module_never_imports_the_web_layer(path: Path) -> None:
    offending = {
        name for name in _imports(path) if name.startswith(("oauth_service.api", *WEB))
    }
    assert offending == set()


@pytest.mark.parametrize("path", _modules("observability"), ids=lambda p: p.name)
def test_observability_module_is_a_leaf(path: Path) -> None:
    offending = {
        name for name in _imports(path) if name.startswith(OBSERVABILITY_FORBIDDEN)
    }
    assert offending == set()


def test_jose_is_imported_by_crypto_jwt_alone() -> None:
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(name == "jose" or name.startswith("jose.") for name in _imports(path))
    }
    assert importers == {"crypto/jwt.py"}


@pytest.mark.parametrize("path", _modules(RESOURCE_KIT), ids=lambda p: p.name)
def test_resource_kit_module_imports_nothing_of_the_server(path: Path) -> None:
    offending = {
        imported for imported in _imports(path) if imported.startswith(SERVER_ONLY)
    }
    assert offending == set()


def test_only_the_fastapi_adapter_of_the_resource_kit_imports_a_web_framework() -> None:
    importers = {
        path.name
        for path in _modules(RESOURCE_KIT)
        if any(name.startswith(WEB) for name in _imports(path))
    }
    assert importers == {"fastapi.py"}


def test_importing_the_resource_kit_imports_no_web_framework() -> None:
    code = (
        "import oauth_service.resource_server, sys; "
        "assert 'fastapi' not in sys.modules and 'starlette' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _imported_names(path: Path) -> set[tuple[str, str]]:
    """``(module, name)`` of every absolute ``from module import name``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        for alias in node.names
    }


def _reaches_into_admin_api(path: Path) -> bool:
    """Whether ``path`` imports a module of the admin API, or a name of the package other than its router."""
    return any(name.startswith(f"{ADMIN_API}.") for name in _imports(path)) or any(
        module == ADMIN_API and name != "router"
        for module, name in _imported_names(path)
    )


def test_admin_api_modules_are_imported_by_the_admin_api_alone() -> None:
    admin = PACKAGE / "api" / "admin"
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if admin not in path.parents and _reaches_into_admin_api(path)
    }
    assert importers == set()


@pytest.mark.parametrize("path", _modules("api/admin"), ids=lambda p: p.name)
def test_admin_api_uses_no_private_name_of_other_api_modules(path: Path) -> None:
    offending = {
        f"{module}.{name}"
        for module, name in _imported_names(path)
        if module.startswith("oauth_service.api")
        and not module.startswith(ADMIN_API)
        and name.startswith("_")
    }
    assert offending == set()


# The database driver is the Postgres store's business: the core and the API see store protocols only. The API
# names asyncpg for its error handlers, and the change listener holds a LISTEN connection of its own.
ASYNCPG_IMPORTERS = {
    "api/errors.py",
    "db/change_listener.py",
    "db/stores/postgres.py",
}


def test_asyncpg_is_imported_by_the_postgres_store_and_the_listener_alone() -> None:
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(name.split(".")[0] == "asyncpg" for name in _imports(path))
    }
    assert importers == ASYNCPG_IMPORTERS


def test_the_stores_of_one_backend_are_chosen_in_one_place() -> None:
    """Only ``db.stores`` itself names the per-backend modules; everything else asks ``build_stores``."""
    backends = ("oauth_service.db.stores.postgres", "oauth_service.db.stores.sqlite")
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(name.startswith(backends) for name in _imports(path))
    }
    assert importers == {"db/stores/__init__.py"}
