"""Shared fixtures and helpers (factories) for the tests; imported by conftest."""
from __future__ import annotations

import copy
import json as _json
from typing import Any
from urllib.parse import urlencode

import pytest
from moto import mock_aws

from chalicelib.settings import get_settings


class _PristineAws:
    """moto's state right after ``bootstrap.ensure_all``: made once per session, copied into each test.

    Creating every table, the bucket and the sender identity through the API costs ~0.13 s;
    a deep copy of moto's backends holding them costs ~1 ms. The copy is taken per environment
    and sender address, so a test that changes either still gets resources that match."""

    def __init__(self) -> None:
        self._copies: dict[Any, list[tuple[Any, str, str, Any]]] = {}

    def install(self) -> None:
        """Fill the (just reset) moto with Wisp's resources, empty."""
        from moto.core.base_backend import BackendDict

        from chalicelib import bootstrap
        from chalicelib.settings import environment
        from chalicelib.store import ALL_MODELS

        settings = get_settings()
        if BackendDict._instances:  # moto was not reset (a mock around this one): create as usual
            bootstrap.ensure_all(settings)
            return
        key = (environment(), settings.mail.sender_email, tuple(m.Meta.table_name for m in ALL_MODELS))
        backends = self._copies.get(key)
        if backends is None:
            bootstrap.ensure_all(settings)
            self._copies[key] = [(backend_dict, account, region, copy.deepcopy(backend))
                                 for backend_dict in BackendDict._instances
                                 for account, region, backend in backend_dict.iter_backends()]
            return
        for backend_dict, account, region, pristine in backends:
            # backend_dict[account] registers the service with moto, so the next reset clears it
            dict.__setitem__(backend_dict[account], region, copy.deepcopy(pristine))


_pristine_aws = _PristineAws()


def _clear_settings_caches() -> None:
    from chalicelib import settings

    settings.get_settings.cache_clear()
    settings._secret_from_secrets_manager.cache_clear()


@pytest.fixture(autouse=True)
def aws_mock():
    """moto around the whole test, with Wisp's resources created (empty) and settings reloaded.

    ``mock_aws()`` starts from a reset moto, as in any moto test; the tables, bucket and sender
    identity are then copied in from ``_PristineAws``. The cached boto3 clients are kept across
    tests (moto intercepts existing clients too): creating them again would load botocore's
    service models, ~1.5 s per test."""
    _clear_settings_caches()
    with mock_aws():
        _pristine_aws.install()
        yield
    _clear_settings_caches()


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
