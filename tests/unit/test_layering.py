"""The layering rules of the architecture, enforced on every module's imports (STYLE.md §3.3).

* ``oauth`` (the protocol core) imports only the standard library, ``oauth_service.oauth``, ``oauth_service.crypto``
  and ``oauth_service.observability.logs`` (stdlib-only structured logging, for audit events) — no web
  framework, ORM or JOSE.
* ``observability`` (logs, metrics) is a leaf every layer reports through: no web framework, and nothing of the
  protocol core, the database layer, the API, the runtime or the app wiring.
* ``crypto`` knows nothing of OAuth, the database or the web.
* ``db`` never imports the web layer; only ``api``, ``app`` and ``resource`` import FastAPI or Starlette.
* ``jose`` is imported by ``crypto/jwt.py`` alone.
* The resource kit (``resource``, ``jwks_verifier``) runs in other projects' APIs: nothing of the server's
  database, settings or app wiring.
"""

import ast
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
RESOURCE_KIT = ("resource.py", "jwks_verifier.py")
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


@pytest.mark.parametrize("name", RESOURCE_KIT)
def test_resource_kit_module_imports_nothing_of_the_server(name: str) -> None:
    offending = {
        imported
        for imported in _imports(PACKAGE / name)
        if imported.startswith(SERVER_ONLY)
    }
    assert offending == set()


def test_jwks_verifier_needs_no_web_framework() -> None:
    assert not {
        name for name in _imports(PACKAGE / "jwks_verifier.py") if name.startswith(WEB)
    }
