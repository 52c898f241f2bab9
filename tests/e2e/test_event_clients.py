"""Live job updates with the clients people really use, over real HTTP against the local stack
as ``make run`` starts it, with the real CPU runner transcribing real speech.

Three clients follow one user's ``GET /api/jobs/events`` at once while a job is submitted, runs
(progress reported every second), finishes and is deleted:

* node with the ``eventsource`` npm package at the version Project-W's web frontend pins (it drops
  every SSE block without ``data:``), as that frontend uses it;
* the browser's own EventSource in Debian's headless chromium, driven by playwright-core;
* a plain Python client that reads only ``event:``/``data:`` (sseclient-py over requests) and
  passes the position it read from the ``wisp_position`` data back as ``last_event_id``.

Each must see ``job_created``, ``job_updated`` while the job runs and ``job_deleted``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import sseclient

from chalicelib.services import event_stream

from .stack import ROOT, log_in, sign_up_and_activate

CLIENTS = ROOT / "tests" / "clients"
FOLLOW_S = 240  # the clients give up after this long


def _need_clients() -> None:
    missing = [what for what, ok in (
        ("node", shutil.which("node")),
        ("tests/clients/node_modules (npm ci in tests/clients; make test does it)",
         (CLIENTS / "node_modules" / "eventsource").is_dir() and (CLIENTS / "node_modules" / "playwright-core").is_dir()),
        ("chromium (/usr/bin/chromium; make test installs it)", Path("/usr/bin/chromium").exists()),
        ("espeak-ng", shutil.which("espeak-ng")),
    ) if not ok]
    if missing:
        pytest.fail("the real-client tests need: " + ", ".join(missing))


class NodeClient:
    """One of the node scripts in tests/clients, its JSON lines collected as they come."""

    def __init__(self, script: str, base: str, token: str) -> None:
        self.name = script
        self.lines: list[dict] = []
        self.process = subprocess.Popen(["node", str(CLIENTS / script), base, token, str(FOLLOW_S)], cwd=CLIENTS,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"output": line.rstrip()})

    def events(self) -> list[tuple[str, str, float]]:
        return [(x["event"], x["data"], x["at"]) for x in self.lines if "event" in x]

    @property
    def connected(self) -> bool:
        return any(x.get("open") for x in self.lines)

    def finish(self, wait: float) -> None:
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(timeout=5)


class PlainClient:
    """A script that reads only ``event:`` and ``data:`` and never sends Last-Event-ID."""

    name = "python"

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.received: list[tuple[str, str, float]] = []
        self.connected = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        position = None
        deadline = time.monotonic() + FOLLOW_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            r = requests.get(f"{self.base}/api/jobs/events", cookies={"token": self.token}, stream=True,
                             params={"last_event_id": position} if position else None, timeout=30)
            assert r.status_code == 200, r.text
            retry_ms = 3000
            for event in sseclient.SSEClient(r.iter_content(chunk_size=None)).events():
                if event.event == event_stream.POSITION_EVENT:
                    position = event.data
                    self.connected = True
                elif event.event.startswith("job_"):
                    self.received.append((event.event, event.data, time.time()))
                    if event.event == "job_deleted":
                        return
                if event.retry:
                    retry_ms = event.retry
            self._stop.wait(retry_ms / 1000)

    def events(self) -> list[tuple[str, str, float]]:
        return list(self.received)

    def finish(self, wait: float) -> None:
        self._stop.set() if wait == 0 else None
        self._thread.join(timeout=wait or 30)


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_every_client_sees_a_real_job_created_progressing_and_deleted(stacks, tmp_path):
    _need_clients()
    # GIVEN the stack as `make run` starts it, its runner reporting progress every second and
    # slowed to one thread, so that a minute of speech takes a while
    stack = stacks(WISP_LOCAL_RUNNER="1", WISP_RUNNER_HEARTBEAT_INTERVAL="1", WISP_RUNNER_BATCH_SIZE="1",
                   WISP_RUNNER_CPU_THREADS="1")
    audio = tmp_path / "talk.wav"
    # Three connections of one user poll in turn, each every 3 × 3 s (event_stream.Slot): for each
    # to see the progress move, it must poll at least twice while the job runs. 12 sentences ran
    # for about 15 s and sometimes gave a client only one poll in that time; 20 give about 25 s
    # (and 4.3 MB of WAV, under the 4.5 MB of a plain upload).
    text = " ".join(["This interview is about the history of the town and the people who lived in it."] * 20)
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(audio), text], check=True)
    email = "listener@example.org"
    sign_up_and_activate(stack, email)
    cookie = log_in(stack, email)
    stack.wait_for_runner()
    session = requests.Session()
    session.cookies.set("token", cookie)
    r = session.post(f"{stack.url}/api/jobs/submit_settings", json={"model": "tiny.en", "language": "en"})
    assert r.status_code == 200, r.text
    settings_id = r.json()
    # the user has been quiet since the start: nothing recent, nothing in flight
    time.sleep(1)

    # AND three clients following the user's stream, each connected just before the upload, as
    # the stock frontend connects before each submit
    clients = [NodeClient("follow_events.mjs", stack.url, cookie), NodeClient("browser_events.mjs", stack.url, cookie),
               PlainClient(stack.url, cookie)]
    failed = True
    try:
        _wait(lambda: all(c.connected for c in clients), 60, "the clients to connect")

        # WHEN a job is submitted, transcribed by the runner and then deleted
        with audio.open("rb") as f:
            r = session.post(f"{stack.url}/api/jobs/submit_job", params={"job_settings_id": settings_id},
                             files={"audio_file": ("talk.wav", f, "audio/wav")})
        assert r.status_code == 200, r.text
        submitted, job = time.time(), str(r.json())
        progress_seen = set()
        while True:
            (info,) = session.get(f"{stack.url}/api/jobs/info", params={"job_ids": job}).json()
            if info["step"] == "runner_in_progress":
                progress_seen.add(round(info["progress"]))
            if info["step"] in ("success", "failed"):
                break
            assert time.time() - submitted < 180, info
            time.sleep(0.3)
        assert info["step"] == "success", info
        assert any(0 < p < 100 for p in progress_seen), progress_seen  # the runner reported progress
        time.sleep(event_stream.LIVE.retry_ms / 1000 * 2)  # let every client see the result first
        r = session.delete(f"{stack.url}/api/jobs/delete", json=[int(job)])
        assert r.status_code == 200, r.text
        failed = False
    finally:
        for client in clients:  # each ends by itself once it has seen job_deleted
            client.finish(0 if failed else 60)

    # THEN every client saw the job created, updated while it ran, and deleted
    for client in clients:
        seen = [(event, at) for event, data, at in client.events() if data == job]
        names = [event for event, _ in seen]
        assert names[:1] == ["job_created"] and names[-1:] == ["job_deleted"], (client.name, seen)
        # assigned, at least one progress move, and the result: several updates, not just the ends
        assert names.count("job_updated") >= 3, (client.name, seen)
        # the upload's job_created came at the live pace of a new connection, not after an idle 30 s
        assert seen[0][1] - submitted < event_stream.IDLE.retry_ms / 1000 / 2, (client.name, seen[0][1] - submitted)
