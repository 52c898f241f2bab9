"""A small in-memory Project-W backend (runner routes only) on http.server, for protocol tests.

It follows spec §3.6/§6 closely enough to exercise the runner: register (403 when online),
unregister (re-queues the runner's job, or fails it when an abort was requested), heartbeat
(abort / job_assigned), retrieve_job_info (400/405), retrieve_job_audio (marks in process),
submit_job_result. The Wisp extensions live where the real backend has them
(chalicelib/routes/wisp.py, docs/extensions.md), with the same shapes:

* ``POST /api/wisp/runners/wait_for_job?session_token=…&timeout=N`` (0–25, default 20) →
  ``{"abort", "job_assigned"}`` as soon as a job is assigned or after N s (``offer_wait_for_job``,
  on by default, as on the real backend);
* ``POST /api/wisp/runners/audio_url`` → ``{"url"}`` (marks the job in process), ``result_upload`` →
  ``{"url", "fields", "key"}`` (a pre-signed POST to a fake S3 endpoint), ``submit_uploaded_result``
  with JSON ``{"key"}`` (``offer_extensions``, off by default).

Several runner tokens are known (``TOKENS``), one runner each. `restart()` forgets all online
runners, like a backend restart without Redis persistence.

Broken jobs: a job submitted with ``audio=None`` has lost its audio. ``missing_audio`` says how the
audio routes answer: ``"404"`` / ``"410"`` (the job is marked in process, so a failure report is
accepted), or ``"fail"`` (the backend fails the job at once and answers 400 "No job is assigned to
this runner", as Wisp does). Its pre-signed URL (``audio_url``) is handed out and answers 404
NoSuchKey. ``refuse_results`` (a status) makes submit_job_result refuse everything; the job is
failed on the backend side regardless, as when the backend gave up on it first.
"""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import HTTP
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class FakeJob:
    id: int
    settings: dict[str, Any]
    audio: bytes | None
    content_type: str = "audio/"
    state: str = "pending"  # pending | assigned | in_process | success | failed
    runner_id: int | None = None
    abort: bool = False
    progress: float = 0.0
    error_msg: str | None = None
    transcript: dict[str, Any] | None = None
    in_process_at: float | None = None
    finished_at: float | None = None


@dataclass
class OnlineRunner:
    id: int
    session: str
    info: dict[str, Any]
    job_id: int | None = None


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    at: float = field(default_factory=time.monotonic)


TOKENS = {"good-token": 1, "token-2": 2, "token-3": 3}
WISP_RUNNERS = "/api/wisp/runners/"
WAIT = object()  # wait_for_job: nothing to answer yet


class FakeBackend:
    def __init__(self, *, offer_extensions: bool = False, offer_wait_for_job: bool = True) -> None:
        self.lock = threading.RLock()
        self.tokens = dict(TOKENS)
        self.online: dict[int, OnlineRunner] = {}
        self.jobs: dict[int, FakeJob] = {}
        self.calls: list[Call] = []
        self.offer_extensions = offer_extensions
        self.offer_wait_for_job = offer_wait_for_job
        self.closed = False
        self.uploads: dict[str, bytes] = {}
        self.fail_routes: dict[str, int] = {}  # route suffix -> number of 503s still to give
        self.missing_audio = "404"  # how audio routes answer for a job without audio (see above)
        self.refuse_results: int | None = None
        self._next_job = 1
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------ test API
    def start(self) -> "FakeBackend":
        self._thread.start()
        return self

    def close(self) -> None:
        self.closed = True
        self.server.shutdown()
        self.server.server_close()

    def submit_job(self, settings: dict[str, Any] | None = None, audio: bytes | None = b"RIFF-fake-audio",
                   content_type: str = "audio/") -> int:
        with self.lock:
            job = FakeJob(self._next_job, settings or {}, audio, content_type)
            self._next_job += 1
            self.jobs[job.id] = job
            self._assign()
            return job.id

    def abort_job(self, job_id: int) -> None:
        with self.lock:
            self.jobs[job_id].abort = True

    def restart(self) -> None:
        """Forget online runners; unfinished jobs go back to the queue."""
        with self.lock:
            self.online.clear()
            for job in self.jobs.values():
                if job.state in ("assigned", "in_process"):
                    job.state, job.runner_id = "pending", None

    def calls_to(self, route: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.path.endswith(route)]

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return True
            time.sleep(interval)
        return False

    # ------------------------------------------------------------ logic
    def _assign(self) -> None:
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.state != "pending":
                continue
            idle = [r for r in self.online.values() if r.job_id is None]
            if not idle:
                return
            runner = idle[0]
            runner.job_id, job.runner_id, job.state = job.id, runner.id, "assigned"

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes):
        """Returns (status, content_type, body bytes)."""
        parsed: Any = None
        if headers.get("Content-Type", "").startswith("application/json") and body:
            parsed = json.loads(body)
        with self.lock:
            self.calls.append(Call(method, path, query, parsed))
            for suffix, count in list(self.fail_routes.items()):
                if path.endswith(suffix) and count > 0:
                    self.fail_routes[suffix] = count - 1
                    return _json(503, {"detail": "temporarily unavailable"})
        deadline = None
        while True:
            with self.lock:
                answer = self._dispatch(method, path, query, headers, parsed, body, deadline)
            if answer is not WAIT:
                return answer
            if deadline is None:
                deadline = time.monotonic() + float(query.get("timeout", ["20"])[0])
            time.sleep(0.01)

    def _dispatch(self, method, path, query, headers, parsed, body, deadline):
        if path.startswith("/s3/"):
            return self._s3(method, path, headers, body)
        if path.startswith("/api/runners/"):
            route = path[len("/api/runners/"):]
        elif path.startswith(WISP_RUNNERS):
            route = "wisp/" + path[len(WISP_RUNNERS):]
            offered = self.offer_wait_for_job if route == "wisp/wait_for_job" else self.offer_extensions
            if not offered:
                return _json(404, {"detail": "Not Found"})
        else:
            return _json(404, {"detail": "Not Found"})
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _json(401, {"detail": "Not authenticated"})
        runner_id = self.tokens.get(auth[7:])
        if runner_id is None:
            return _json(401, {"detail": "invalid runner token"})
        if route == "register":
            if runner_id in self.online:
                return _json(403, {"detail": "runner is already registered"})
            session = secrets.token_urlsafe(32)
            self.online[runner_id] = OnlineRunner(runner_id, session, parsed or {})
            self._assign()
            return _json(200, {"id": runner_id, "session_token": session})
        if route == "unregister":
            runner = self.online.pop(runner_id, None)
            if runner and runner.job_id is not None:
                job = self.jobs[runner.job_id]
                if job.abort:
                    job.state, job.error_msg = "failed", "aborted"
                else:
                    job.state, job.runner_id = "pending", None
            self._assign()
            return _json(200, "Success")
        token = query.get("session_token", [None])[0]
        if token is None:
            return _json(422, {"detail": [{"type": "missing", "loc": ["query", "session_token"]}]})
        runner = self.online.get(runner_id)
        if runner is None or runner.session != token:
            if deadline is not None:  # a long-poll whose runner went away meanwhile (real backend: same)
                return _json(200, {"abort": False, "job_assigned": False})
            return _json(403, {"detail": "runner is not online"})
        job = self.jobs.get(runner.job_id) if runner.job_id is not None else None
        if route == "heartbeat":
            if job is not None and job.state == "in_process":
                if job.abort:
                    return _json(200, {"abort": True, "job_assigned": False})
                job.progress = float((parsed or {}).get("progress", 0))
            return _json(200, {"abort": False, "job_assigned": job is not None})
        if route == "wisp/wait_for_job":
            try:
                timeout = float(query.get("timeout", ["20"])[0])
            except ValueError:
                timeout = -1
            if not 0 <= timeout <= 25:
                return _json(422, {"detail": [{"type": "less_than_equal", "loc": ["query", "timeout"]}]})
            if job is not None:
                if job.state == "in_process" and job.abort:
                    return _json(200, {"abort": True, "job_assigned": False})
                return _json(200, {"abort": False, "job_assigned": True})
            if self.closed or (deadline is not None and time.monotonic() >= deadline):
                return _json(200, {"abort": False, "job_assigned": False})
            return WAIT
        if route in ("retrieve_job_info", "retrieve_job_audio", "wisp/audio_url"):
            if job is None:
                return _json(400, {"detail": "no job assigned"})
            if job.abort:
                return _json(405, {"detail": "job was aborted"})
            if route == "retrieve_job_info":
                return _json(200, {"id": job.id, "settings": job.settings})
            if job.audio is None and self.missing_audio == "fail":
                job.state, job.error_msg, job.finished_at = "failed", "the audio of this job is missing", time.monotonic()
                runner.job_id = None
                self._assign()
                return _json(400, {"detail": "No job is assigned to this runner"})
            job.state, job.in_process_at = "in_process", time.monotonic()
            if job.audio is None and route == "retrieve_job_audio":
                if self.missing_audio == "410":
                    return _json(410, {"detail": "The audio of this job is gone"})
                return _json(404, {"detail": "audio not found"})
            if route == "wisp/audio_url":
                return _json(200, {"url": f"{self.url}/s3/audio/{job.id}"})
            return 200, job.content_type, job.audio
        if route in ("submit_job_result", "wisp/submit_uploaded_result"):
            if job is None or job.state != "in_process":
                return _json(400, {"detail": "runner is not processing a job"})
            if route == "wisp/submit_uploaded_result":
                key = (parsed or {}).get("key") if isinstance(parsed, dict) else None
                if not isinstance(key, str) or not key:
                    return _json(422, {"detail": [{"type": "missing", "loc": ["body", "key"]}]})
                if not key.startswith(f"results/{job.id}/") or key not in self.uploads:
                    return _json(400, {"detail": "This key is not an upload for the job this runner is processing"})
                parsed = json.loads(self.uploads.pop(key))
            if parsed.get("error_msg") is None and parsed.get("transcript") is None:
                return _json(422, {"detail": [{"type": "value_error", "loc": ["body"]}]})
            if self.refuse_results is not None:
                job.state, job.finished_at, runner.job_id = "failed", time.monotonic(), None
                self._assign()
                return _json(self.refuse_results, {"detail": "refused"})
            if parsed.get("error_msg") is not None:
                job.state, job.error_msg = "failed", parsed["error_msg"]
            else:
                job.state, job.transcript = "success", parsed["transcript"]
            job.finished_at = time.monotonic()
            runner.job_id = None
            self._assign()
            return _json(200, "Success")
        if route == "wisp/result_upload":
            if job is None or job.state != "in_process":
                return _json(400, {"detail": "This runner is not processing a job"})
            key = f"results/{job.id}/{secrets.token_hex(4)}.json"
            # as boto3's generate_presigned_post: the key is also one of the form fields
            fields = {"Content-Type": "application/json", "key": key, "policy": "x", "x-amz-signature": "y"}
            return _json(200, {"url": f"{self.url}/s3/upload", "fields": fields, "key": key})
        return _json(404, {"detail": "Not Found"})

    def _s3(self, method: str, path: str, headers: Any, body: bytes):
        if method == "GET" and path.startswith("/s3/audio/"):
            if "Authorization" in headers:
                return 400, "text/plain", b"only one auth mechanism allowed"
            job = self.jobs[int(path.rsplit("/", 1)[1])]
            if job.audio is None:
                return 404, "application/xml", b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
            if self.fail_routes.get("/s3/audio", 0) > 0:
                self.fail_routes["/s3/audio"] -= 1
                return 503, "application/xml", b"<Error><Code>SlowDown</Code></Error>"
            return 200, "binary/octet-stream", job.audio
        if method == "POST" and path == "/s3/upload":
            msg = message_from_bytes(b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body, policy=HTTP)
            parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True) for p in msg.iter_parts()}
            names = [p.get_param("name", header="content-disposition") for p in msg.iter_parts()]
            if names[-1] != "file" or parts.get("Content-Type") != b"application/json" or "policy" not in parts:
                return 400, "text/plain", b"malformed POST upload"
            self.uploads[parts["key"].decode()] = parts["file"]
            return 204, "text/plain", b""
        return 404, "text/plain", b"no such key"

    def _handler_class(self):
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, ctype, payload = backend.handle(
                    self.command, url.path, parse_qs(url.query), self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler


def _json(status: int, body: Any):
    return status, "application/json", json.dumps(body).encode()
