"""Persistence: SQLModel tables, the async engine, SQL implementations of ``oauth.storage``."""
