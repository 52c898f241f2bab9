"""Unknown paths answer 404 and wrong methods 405, both in the ``{"detail"}`` shape (spec §1.5).

API Gateway would otherwise answer 403 "Missing Authentication Token" for unknown paths and Chalice
would answer 405 in its own ``{"Code", "Message"}`` shape.
"""
from __future__ import annotations

from typing import Any

from chalice import Chalice

from .. import errors
from ._http import ALL_METHODS, error_response


def install(app: Chalice) -> None:
    """Add 405 views for every declared path's other methods, and a greedy 404 view."""
    for path, methods in list(app.routes.items()):
        missing = [m for m in ALL_METHODS if m not in methods]
        if missing:
            _register(app, path, missing, _method_not_allowed, f"not_allowed_{len(app.routes)}_{path}")
    _register(app, "/", list(ALL_METHODS), _not_found, "not_found_root")
    _register(app, "/{proxy+}", list(ALL_METHODS), _not_found, "not_found")


def _register(app: Chalice, path: str, methods: list[str], view: Any, name: str) -> None:
    if path in app.routes and all(m in app.routes[path] for m in methods):
        return

    def handler(**_: Any) -> Any:
        return view()

    handler.__name__ = name.replace("/", "_").replace("{", "").replace("}", "").replace("+", "")
    app.route(path, methods=methods, content_types=["*/*"], name=handler.__name__)(handler)


def _not_found() -> Any:
    return error_response(errors.NotFound())


def _method_not_allowed() -> Any:
    return error_response(errors.MethodNotAllowed())
