"""End-to-end tests talk to a real local stack over HTTP, so the in-process moto mock is off."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def aws_mock():
    """Overrides the autouse moto fixture of tests/support.py: these tests start their own moto server."""
    yield
