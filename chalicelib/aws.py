"""One lazy, cached factory for boto3 clients.

No client exists at import time, so moto can take them in tests, and the local stack points every
client at the embedded AWS endpoint (``WISP_AWS_ENDPOINT_URL``).
"""
from __future__ import annotations

import threading
from typing import Any

from .settings import environment

_clients: dict[str, Any] = {}
_session: Any = None  # one boto3 session: service models are loaded once per process
_lock = threading.Lock()


def client(service: str) -> Any:
    """The shared boto3 client for ``service``, created on first use."""
    found = _clients.get(service)
    if found is not None:
        return found
    global _session
    with _lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            env = environment()
            if _session is None:
                _session = boto3.session.Session()
            _clients[service] = _session.client(
                service,
                region_name=env.region,
                endpoint_url=env.endpoint_url,
                config=Config(retries={"max_attempts": 4, "mode": "standard"}, signature_version=_signature(service)),
            )
        return _clients[service]


def _signature(service: str) -> str | None:
    # pre-signed S3 URLs must use SigV4 (KMS-encrypted objects refuse SigV2)
    return "s3v4" if service == "s3" else None


def reset_clients() -> None:
    """Forget every cached client (tests, or after the endpoint changed)."""
    with _lock:
        _clients.clear()
