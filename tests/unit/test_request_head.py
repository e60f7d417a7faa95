"""The request-head bound extends uvicorn's httptools protocol: fail loudly if uvicorn renames what it extends."""

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from oauth_service.cli.request_head import HOOKS, BoundedHttpToolsProtocol


def test_uvicorn_still_has_the_callbacks_the_bound_extends() -> None:
    for name in HOOKS:
        assert callable(getattr(HttpToolsProtocol, name, None)), (
            f"uvicorn's HttpToolsProtocol has no {name}: cli/request_head.py must follow it"
        )
        assert name in vars(BoundedHttpToolsProtocol)
