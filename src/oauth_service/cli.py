"""Command-line interface (placeholder until the foundation CLI lands)."""


def main() -> None:
    """Entry point of the ``oauth-service`` console script."""
    raise SystemExit("not implemented yet")
