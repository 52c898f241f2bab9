"""Shared fixtures: fake backend, runner factory, espeak-ng speech."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from wisp_runner.client import BackendClient, RetryPolicy
from wisp_runner.loop import Runner
from wisp_runner.settings import RunnerConfig

from .fake_backend import FakeBackend

RUNNER_DIR = Path(__file__).resolve().parents[1]
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.2)

SPEECH_TEXT = (
    "The weather is nice today. We will meet at the station in the morning. "
    "Please bring your ticket and a warm coat."
)


@pytest.fixture
def backend():
    fake = FakeBackend().start()
    yield fake
    fake.close()


@pytest.fixture
def start_runner(tmp_path):
    """start_runner(backend, transcriber, token=/tokens=, **config) → (runner, thread); stopped at teardown."""
    started: list[tuple[Runner, threading.Thread]] = []

    def start(backend: FakeBackend, transcriber, token: str = "good-token", tokens=None, **overrides):
        tokens = tuple(tokens or [token])
        token = tokens[0]
        config = RunnerConfig(
            backend_url=backend.url, tokens=tokens, token_secret_name=None, name="test-runner",
            heartbeat_interval=overrides.pop("heartbeat_interval", 0.1),
            health_file=tmp_path / "health", **overrides,
        )
        stop = threading.Event()
        client = BackendClient(backend.url, token, timeout=5, retry=FAST_RETRY, stop=stop)
        runner = Runner(client=client, transcriber=transcriber, config=config, stop=stop)
        result: dict = {}
        thread = threading.Thread(target=lambda: result.setdefault("rc", runner.run()), daemon=True)
        thread.result = result  # type: ignore[attr-defined]
        thread.start()
        started.append((runner, thread))
        return runner, thread

    yield start
    for runner, thread in started:
        runner.stop.set()
        thread.join(timeout=10)


@contextlib.contextmanager
def runner_process(backend: FakeBackend, tmp_path, *args: str, env: dict | None = None):
    """`python -m wisp_runner --dummy` against ``backend`` as a real process; killed if still alive at exit.

    The caller stops it (e.g. SIGTERM) inside the block; its combined output is then in ``proc.output``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wisp_runner", "--backend-url", backend.url, "--dummy",
         "--heartbeat-interval", "0.2", "--health-file", str(tmp_path / "health"), *args],
        env={**os.environ, "PYTHONPATH": str(RUNNER_DIR), **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.output = proc.stdout.read().decode()


def require(missing: str | None) -> None:
    """Skip the test when something it needs is `missing` (a reason); fail instead under CI
    (.ci/run sets CI), where `make test` installs everything."""
    if missing:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{missing}; the test did NOT run")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


requires_espeak = pytest.mark.skipif(
    not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng); CI installs it"
)


def make_speech(text: str, path: Path, *, speed: int = 150) -> Path:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed), "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng); CI installs it")
    return make_speech(SPEECH_TEXT, tmp_path_factory.mktemp("speech") / "speech.wav")


@pytest.fixture(scope="session")
def dialogue(tmp_path_factory):
    """(wav path, turns) of tools/dialogue.py's two-voice interview (about 53 s, 8 turns)."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng); CI installs it")
    from tools.dialogue import make_dialogue

    path = tmp_path_factory.mktemp("dialogue") / "dialogue.wav"
    return path, make_dialogue(path)
