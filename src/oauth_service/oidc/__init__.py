"""OpenID Connect on top of the OAuth core: ID tokens, standard claims, UserInfo, sessions and logout.

Each module is a piece the existing endpoints call, never a branch inside a grant: ``id_tokens`` mints and
checks ID tokens, ``claims`` maps scopes to a user's standard claims, ``token_extension`` adds the ID token to a
token response.
"""
