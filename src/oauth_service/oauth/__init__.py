"""Framework-free OAuth 2.0 protocol core: value objects, errors, storage protocols, grants."""
