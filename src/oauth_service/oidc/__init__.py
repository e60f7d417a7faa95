"""OpenID Connect on top of the OAuth core: ID tokens, standard claims, sessions and logout.

Each module is a piece the existing endpoints call, never a branch inside a grant:

* ``id_tokens`` mints ID tokens and checks an ``id_token_hint``; ``token_extension`` adds the ID token to a
  token-endpoint response, whatever grant issued it;
* ``authorization_params`` checks the authorization request's OpenID Connect parameters; ``implicit`` answers
  ``response_type=id_token`` and ``id_token token``;
* ``claims`` maps scopes to a user's standard claims (UserInfo and the implicit ID token); ``profile_rules``
  validates those claims when they are set;
* ``end_session`` decides what a logout request may do; ``logout_tokens`` signs back-channel logout tokens.
"""
