"""Cryptographic primitives: JWT signing, password hashing, opaque tokens. Nothing here knows OAuth."""
