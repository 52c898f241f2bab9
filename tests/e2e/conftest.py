"""End-to-end tests talk to a real local stack over HTTP, so the in-process moto mock is off."""
from __future__ import annotations


import pytest

from .stack import Stack, start_stack


@pytest.fixture(autouse=True)
def aws_mock():
    """Overrides the autouse moto fixture of tests/support.py: these tests start their own moto server."""
    yield


@pytest.fixture
def stacks(tmp_path):
    """Starts stacks on demand; whatever is still running at the end is killed, with the processes
    it started (its runner has a process group of its own, which a killed stack cannot stop)."""
    started: list[Stack] = []

    def start(**extra_env: str) -> Stack:
        stack = start_stack(tmp_path / "state", tmp_path / f"stack-{len(started)}.log", **extra_env)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.kill()
