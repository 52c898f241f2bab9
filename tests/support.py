"""Shared fixtures and helpers (factories) for the tests; imported by conftest."""
from __future__ import annotations

import json as _json
from typing import Any
from urllib.parse import urlencode

import pytest
from moto import mock_aws

from chalicelib.settings import get_settings


@pytest.fixture(autouse=True)
def aws_mock():
    """moto around the whole test, with Wisp's resources created and settings reloaded.

    The cached boto3 clients are kept across tests (moto intercepts existing clients too):
    creating them again would load botocore's service models, ~1.5 s per test."""
    get_settings.cache_clear()
    with mock_aws():
        from chalicelib import bootstrap

        bootstrap.ensure_all(get_settings())
        yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def app():
    from app import app as chalice_app

    return chalice_app


@pytest.fixture
def client(app):
    from chalice.test import Client

    with Client(app) as c:
        yield c


class Api:
    """Small wrapper over chalice.test.Client for readable tests."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def request(self, method: str, path: str, *, query: dict | list | None = None, json: Any = None,
                body: bytes | str | None = None, headers: dict | None = None, token: str | None = None,
                cookie: str | None = None) -> Any:
        headers = dict(headers or {})
        if query:
            path = f"{path}?{urlencode(query, doseq=True)}"
        if json is not None:
            body = _json.dumps(json)
            headers.setdefault("Content-Type", "application/json")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if cookie:
            headers["Cookie"] = f"token={cookie}"
        if isinstance(body, str):
            body = body.encode("utf-8")
        return self.client.http.request(method, path, headers=headers, body=body or b"")

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(client) -> Api:
    return Api(client)


def body(response: Any) -> Any:
    assert response.headers["Content-Type"] == "application/json", response.headers
    return _json.loads(response.body)


def settings_with(section: str | None = None, **changes: Any) -> Any:
    """The current settings with ``changes`` applied to a dotted ``section`` (or the top level)."""
    from chalicelib.settings import get_settings

    settings = get_settings()
    if section is None:
        return settings.model_copy(update=changes)
    path = section.split(".")
    parents = [settings]
    for name in path:
        parents.append(getattr(parents[-1], name))
    updated = parents[-1].model_copy(update=changes)
    for name, parent in zip(reversed(path), reversed(parents[:-1])):
        updated = parent.model_copy(update={name: updated})
    return updated


@pytest.fixture
def use_settings(monkeypatch):
    """Make every loaded chalicelib module see the given settings for this test."""
    import sys

    def apply(settings: Any) -> Any:
        for name, module in list(sys.modules.items()):
            if name.startswith("chalicelib") and callable(getattr(module, "get_settings", None)):
                monkeypatch.setattr(module, "get_settings", lambda: settings)
        return settings

    return apply
