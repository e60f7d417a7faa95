"""oauth-service: an async OAuth 2.0 authorization server."""

__version__ = "0.1.0"
