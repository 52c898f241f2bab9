"""A small in-memory Project-W backend (runner routes only) on http.server, for protocol tests.

It follows spec §3.6/§6 closely enough to exercise the runner: register (403 when online),
unregister (re-queues the runner's job, or fails it when an abort was requested), heartbeat
(abort / job_assigned), retrieve_job_info (400/405), retrieve_job_audio (marks in process),
submit_job_result. Optional Wisp extensions (audio_url, result_upload, submit_uploaded_result) and
a fake S3 endpoint can be switched on. `restart()` forgets all online runners, like a backend
restart without Redis persistence.
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
    audio: bytes
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


class FakeBackend:
    def __init__(self, *, offer_extensions: bool = False) -> None:
        self.lock = threading.RLock()
        self.tokens = {"good-token": 1}
        self.online: dict[int, OnlineRunner] = {}
        self.jobs: dict[int, FakeJob] = {}
        self.calls: list[Call] = []
        self.offer_extensions = offer_extensions
        self.uploads: dict[str, bytes] = {}
        self.fail_routes: dict[str, int] = {}  # route suffix -> number of 503s still to give
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
        self.server.shutdown()
        self.server.server_close()

    def submit_job(self, settings: dict[str, Any] | None = None, audio: bytes = b"RIFF-fake-audio",
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
            if path.startswith("/s3/"):
                return self._s3(method, path, headers, body)
            if not path.startswith("/api/runners/"):
                return _json(404, {"detail": "Not Found"})
            route = path[len("/api/runners/"):]
            if route.startswith("wisp/") and not self.offer_extensions:
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
                return _json(403, {"detail": "runner is not online"})
            job = self.jobs.get(runner.job_id) if runner.job_id is not None else None
            if route == "heartbeat":
                if job is not None and job.state == "in_process":
                    if job.abort:
                        return _json(200, {"abort": True, "job_assigned": False})
                    job.progress = float((parsed or {}).get("progress", 0))
                return _json(200, {"abort": False, "job_assigned": job is not None})
            if route in ("retrieve_job_info", "retrieve_job_audio", "wisp/audio_url"):
                if job is None:
                    return _json(400, {"detail": "no job assigned"})
                if job.abort:
                    return _json(405, {"detail": "job was aborted"})
                if route == "retrieve_job_info":
                    return _json(200, {"id": job.id, "settings": job.settings})
                job.state, job.in_process_at = "in_process", time.monotonic()
                if route == "wisp/audio_url":
                    return _json(200, {"url": f"{self.url}/s3/audio/{job.id}"})
                return 200, job.content_type, job.audio
            if route in ("submit_job_result", "wisp/submit_uploaded_result"):
                if job is None or job.state != "in_process":
                    return _json(400, {"detail": "runner is not processing a job"})
                if route == "wisp/submit_uploaded_result":
                    parsed = json.loads(self.uploads.pop(parsed["key"]))
                if parsed.get("error_msg") is None and parsed.get("transcript") is None:
                    return _json(422, {"detail": [{"type": "value_error", "loc": ["body"]}]})
                if parsed.get("error_msg") is not None:
                    job.state, job.error_msg = "failed", parsed["error_msg"]
                else:
                    job.state, job.transcript = "success", parsed["transcript"]
                job.finished_at = time.monotonic()
                runner.job_id = None
                self._assign()
                return _json(200, "Success")
            if route == "wisp/result_upload":
                key = f"results/{secrets.token_hex(4)}.json"
                return _json(200, {"url": f"{self.url}/s3/upload", "fields": {"key": key, "policy": "x"}})
            return _json(404, {"detail": "Not Found"})

    def _s3(self, method: str, path: str, headers: Any, body: bytes):
        if method == "GET" and path.startswith("/s3/audio/"):
            if "Authorization" in headers:
                return 400, "text/plain", b"only one auth mechanism allowed"
            job = self.jobs[int(path.rsplit("/", 1)[1])]
            return 200, "binary/octet-stream", job.audio
        if method == "POST" and path == "/s3/upload":
            msg = message_from_bytes(b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body, policy=HTTP)
            parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True) for p in msg.iter_parts()}
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
