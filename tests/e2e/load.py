"""Concurrent load against a running local stack over real HTTP: people submitting jobs through
``/api/jobs/submit_job`` and runners speaking the stock Project-W runner protocol (register,
heartbeat, retrieve_job_info, retrieve_job_audio, submit_job_result, unregister).

Everything that goes wrong is counted rather than asserted where it happens, so one run reports all
of it: answers ≥ 500, jobs handed to more than one runner, jobs that never finish, a job id that
``jobs/info`` does not know right after ``submit_job`` returned it, and audio that is not the
audio submitted. Used by ``tests/e2e/test_local_stack_load.py`` and ``bench/local_stack_load.py``.
"""
from __future__ import annotations

import hashlib
import io
import struct
import threading
import time
import wave
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .stack import PASSWORD, Stack, log_in, sign_up_and_activate

RUNNER_INFO = {"version": "1.0.0", "git_hash": "load", "source_code_url": "https://example.org/runner", "priority": 100}


def wav(marker: str, *, seconds: float = 0.05) -> bytes:
    """A small valid WAV file whose samples carry ``marker``, so every job's audio is its own."""
    frames = int(16000 * seconds)
    seed = int.from_bytes(hashlib.sha256(marker.encode()).digest()[:4], "big")
    samples = struct.pack(f"<{frames}h", *(((seed >> (i % 24)) + i) % 2000 - 1000 for i in range(frames)))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples)
    return out.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Tally:
    """What happened during a load, counted from every thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    server_errors: list[str] = field(default_factory=list)  # "<status> <method> <path>: <detail>"
    other_errors: list[str] = field(default_factory=list)  # unexpected 4xx answers and exceptions
    submitted: dict[int, str] = field(default_factory=dict)  # job id -> digest of the audio submitted
    owners: dict[int, int] = field(default_factory=dict)  # job id -> index of the submitter
    handed: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))  # job id -> runners that got it
    received: dict[int, str] = field(default_factory=dict)  # job id -> digest of the audio a runner got
    finished: set[int] = field(default_factory=set)  # job ids whose result a runner submitted
    unknown_after_submit: list[int] = field(default_factory=list)  # jobs/info did not know a fresh job id

    def session(self) -> requests.Session:
        """A session whose every answer ≥ 500 is counted."""
        session = requests.Session()

        def count(response: requests.Response, *_: Any, **__: Any) -> None:
            if response.status_code >= 500:
                with self.lock:
                    self.server_errors.append(f"{response.status_code} {response.request.method} "
                                              f"{response.request.path_url.split('?')[0]}: {response.text[:200]}")

        session.hooks["response"].append(count)
        return session

    def error(self, what: str) -> None:
        with self.lock:
            self.other_errors.append(what)

    @property
    def doubly_handed(self) -> dict[int, list[str]]:
        return {job: names for job, names in self.handed.items() if len(set(names)) > 1}

    @property
    def wrong_audio(self) -> list[int]:
        return [job for job, got in self.received.items() if self.submitted.get(job) not in (None, got)]


def admin_session(stack: Stack, tally: Tally) -> requests.Session:
    password = (stack.log.parent / "state" / "admin-password").read_text().strip()
    session = tally.session()
    session.cookies.set("token", log_in(stack, "admin@wisp.example", password, scope="admin"))
    return session


def runner_tokens(stack: Stack, admin: requests.Session, count: int) -> list[str]:
    tokens = []
    for _ in range(count):
        r = admin.post(f"{stack.url}/api/admins/create_runner", timeout=30)
        assert r.status_code == 200, r.text
        tokens.append(r.json()["token"])
    return tokens


def people(stack: Stack, tally: Tally, count: int, prefix: str = "load") -> list[tuple[str, requests.Session]]:
    """``count`` activated, logged-in accounts (signed up side by side)."""
    made: list[tuple[str, requests.Session] | None] = [None] * count

    def sign_up(i: int) -> None:
        email = f"{prefix}-{i}@example.org"
        sign_up_and_activate(stack, email)
        session = tally.session()
        session.cookies.set("token", log_in(stack, email))
        made[i] = (email, session)

    threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(made), "a sign-up failed"
    return [m for m in made if m]


def submit(stack: Stack, session: requests.Session, audio: bytes, name: str) -> requests.Response:
    return session.post(f"{stack.url}/api/jobs/submit_job", files={"audio_file": (name, audio, "audio/wav")},
                        data={}, timeout=60)


class Submitter(threading.Thread):
    """Submits ``jobs`` jobs one after another, each checked at once with ``jobs/info``."""

    def __init__(self, stack: Stack, index: int, session: requests.Session, tally: Tally, jobs: int) -> None:
        super().__init__(name=f"submitter-{index}", daemon=True)
        self.stack, self.index, self.session, self.tally, self.jobs = stack, index, session, tally, jobs

    def run(self) -> None:
        for n in range(self.jobs):
            audio = wav(f"{self.index}-{n}-{time.monotonic_ns()}")
            try:
                r = submit(self.stack, self.session, audio, f"talk-{self.index}-{n}.wav")
                if r.status_code != 200:
                    self.tally.error(f"submit_job {r.status_code}: {r.text[:200]}")
                    continue
                job_id = int(r.json())
                with self.tally.lock:
                    self.tally.submitted[job_id] = digest(audio)
                    self.tally.owners[job_id] = self.index
                info = self.session.get(f"{self.stack.url}/api/jobs/info", params={"job_ids": job_id}, timeout=30)
                if info.status_code != 200 or [j["id"] for j in info.json()] != [job_id]:
                    with self.tally.lock:
                        self.tally.unknown_after_submit.append(job_id)
            except requests.RequestException as exc:
                self.tally.error(f"submit_job: {exc!r}")


class StockRunner(threading.Thread):
    """A runner that behaves like Project-W's: heartbeats, and for an assigned job info, audio, result.

    ``interval`` replaces the stock 10 s between heartbeats, so a test takes seconds.
    """

    def __init__(self, stack: Stack, token: str, name: str, tally: Tally, stop: threading.Event,
                 interval: float = 0.1) -> None:
        super().__init__(name=name, daemon=True)
        self.stack, self.name_, self.tally, self.stop_event, self.interval = stack, name, tally, stop, interval
        self.http = tally.session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.base = f"{stack.url}/api/runners"
        self.session_token = ""

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base}/{path}", params={"session_token": self.session_token},
                                 timeout=60, **kwargs)

    def register(self) -> None:
        r = self.http.post(f"{self.base}/register", json={"name": self.name_, **RUNNER_INFO}, timeout=30)
        if r.status_code == 403:  # still online from before: what the stock runner does
            self.http.post(f"{self.base}/unregister", timeout=30)
            r = self.http.post(f"{self.base}/register", json={"name": self.name_, **RUNNER_INFO}, timeout=30)
        assert r.status_code == 200, r.text
        self.session_token = r.json()["session_token"]

    def audio(self) -> bytes | None:
        r = self.call("POST", "retrieve_job_audio", allow_redirects=False)
        if r.status_code == 413:  # over the Lambda limit: Wisp's pre-signed URL extension
            url = self.http.post(f"{self.stack.url}/api/wisp/runners/audio_url",
                                 params={"session_token": self.session_token}, timeout=30)
            if url.status_code != 200:
                self.tally.error(f"audio_url {url.status_code}: {url.text[:200]}")
                return None
            r = requests.get(url.json()["url"], timeout=60)
        if r.status_code != 200:
            self.tally.error(f"retrieve_job_audio {r.status_code}: {r.text[:200]}")
            return None
        return r.content

    def process(self) -> None:
        info = self.call("GET", "retrieve_job_info")
        if info.status_code != 200:
            self.tally.error(f"retrieve_job_info {info.status_code}: {info.text[:200]}")
            return
        job_id = int(info.json()["id"])
        with self.tally.lock:
            self.tally.handed[job_id].append(self.name_)
        audio = self.audio()
        if audio is None:
            return
        got = digest(audio)
        with self.tally.lock:
            self.tally.received[job_id] = got
        text = f"job {job_id} audio {got}\n"
        transcript = {"as_txt": text, "as_srt": f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n",
                      "as_tsv": f"start\tend\ttext\n0\t1000\t{text}", "as_vtt": f"WEBVTT\n\n00:00.000 --> 00:01.000\n{text}\n",
                      "as_json": {"segments": [{"start": 0.0, "end": 1.0, "text": text}]}}
        r = self.call("POST", "submit_job_result", json={"transcript": transcript, "error_msg": None})
        if r.status_code != 200:
            self.tally.error(f"submit_job_result {r.status_code}: {r.text[:200]}")
            return
        with self.tally.lock:
            self.tally.finished.add(job_id)

    def run(self) -> None:
        try:
            self.register()
            while not self.stop_event.is_set():
                r = self.call("POST", "heartbeat", json={"progress": 0.0})
                if r.status_code != 200:
                    self.tally.error(f"heartbeat {r.status_code}: {r.text[:200]}")
                elif r.json().get("job_assigned"):
                    self.process()
                    continue
                self.stop_event.wait(self.interval)
        except Exception as exc:  # noqa: BLE001 - counted, the load goes on
            self.tally.error(f"runner {self.name_}: {exc!r}")
        finally:
            try:
                self.http.post(f"{self.base}/unregister", params={"session_token": self.session_token}, timeout=30)
            except requests.RequestException:
                pass


def drain(stack: Stack, token: str, name: str, tally: Tally, timeout: float = 30.0) -> None:
    """Run one stock-protocol runner until every job in ``tally.submitted`` is finished (or an
    error is tallied, or ``timeout`` passes), then stop it."""
    stop = threading.Event()
    runner = StockRunner(stack, token, name, tally, stop)
    runner.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(tally.submitted) <= tally.finished or tally.other_errors:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        runner.join(30)


@dataclass
class LoadResult:
    tally: Tally
    seconds: float  # from the first submission to the last result

    @property
    def jobs_per_second(self) -> float:
        return len(self.tally.finished) / self.seconds if self.seconds else 0.0

    @property
    def lost(self) -> list[int]:
        return sorted(set(self.tally.submitted) - self.tally.finished)


def run_load(stack: Stack, submitters: list[requests.Session], tokens: list[str], tally: Tally, *,
             jobs_per_submitter: int, timeout: float = 120.0, interval: float = 0.1) -> LoadResult:
    """Submitters and runners side by side until every submitted job has a result (or ``timeout``)."""
    stop = threading.Event()
    runners = [StockRunner(stack, token, f"load-runner-{i}", tally, stop, interval) for i, token in enumerate(tokens)]
    for runner in runners:
        runner.start()
    started = time.monotonic()
    senders = [Submitter(stack, i, session, tally, jobs_per_submitter) for i, session in enumerate(submitters)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout)
    deadline = started + timeout
    while time.monotonic() < deadline:
        with tally.lock:
            if set(tally.submitted) <= tally.finished:
                break
        time.sleep(0.05)
    seconds = time.monotonic() - started
    stop.set()
    for runner in runners:
        runner.join(30)
    return LoadResult(tally, seconds)


def job_steps(stack: Stack, session: requests.Session, job_ids: list[int]) -> dict[int, str]:
    r = session.get(f"{stack.url}/api/jobs/info", params=[("job_ids", j) for j in job_ids], timeout=30)
    assert r.status_code == 200, r.text
    return {j["id"]: j["step"] for j in r.json()}


def transcript(stack: Stack, session: requests.Session, job_id: int) -> str:
    r = session.get(f"{stack.url}/api/jobs/download_transcript",
                    params={"job_id": job_id, "transcript_type": "as_txt"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def state_dir(stack: Stack) -> Path:
    return stack.log.parent / "state"


__all__ = ["PASSWORD", "LoadResult", "StockRunner", "Submitter", "Tally", "admin_session", "job_steps", "people",
           "run_load", "runner_tokens", "state_dir", "submit", "transcript", "wav"]
