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
