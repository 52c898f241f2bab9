"""ECS task scale-in protection: the runner loop against a small stand-in for the ECS agent's
``$ECS_AGENT_URI/task-protection/v1/state`` endpoint (and the fake backend)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wisp_runner.dummy import DummyTranscriber
from wisp_runner.protection import STATE_PATH, TaskProtection

TASK_ARN = "arn:aws:ecs:eu-central-1:111122223333:task/wisp-runners/0123456789abcdef"


class FakeAgent:
    """Answers like the ECS agent: ``{"protection": {...}}``, or (``fail``) a failure/error body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.fail: str | None = None  # None | "failure" | "error" | "500"
        self.lock = threading.Lock()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with agent.lock:
                    agent.requests.append((self.command, self.path, body))
                status, answer = agent.answer(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/api/{'a' * 32}"  # like the agent's URI
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.fail == "failure":
            return 200, {"failure": {"Arn": TASK_ARN, "Detail": None, "Reason": "TASK_NOT_VALID"}}
        if self.fail == "error":
            return 400, {"requestID": "1", "error": {"Arn": TASK_ARN, "Code": "ThrottlingException",
                                                      "Message": "Rate exceeded"}}
        if self.fail == "500":
            return 500, {}
        return 200, {"protection": {"ExpirationDate": "2026-11-30T12:30:00Z" if body["ProtectionEnabled"] else None,
                                    "ProtectionEnabled": body["ProtectionEnabled"], "TaskArn": TASK_ARN}}

    @property
    def states(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _method, _path, body in self.requests]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return bool(predicate())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def agent(monkeypatch):
    fake = FakeAgent()
    monkeypatch.setenv("ECS_AGENT_URI", fake.uri)
    yield fake
    fake.close()


def test_runner_protects_its_task_while_it_holds_a_job(backend, agent, start_runner):
    # GIVEN a runner in an ECS task (ECS_AGENT_URI set), idle: nothing is sent
    runner, _ = start_runner(backend, DummyTranscriber(segments=5, segment_seconds=0.1))
    assert backend.wait_for(lambda: backend.online)
    assert runner.protection.enabled and agent.requests == []
    # WHEN it takes a job
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "in_process", timeout=10)
    # THEN its task is protected (PUT to the documented path, with an expiry) ...
    assert agent.wait_for(lambda: agent.states[:1] == [{"ProtectionEnabled": True, "ExpiresInMinutes": 30}])
    assert all(method == "PUT" and path.endswith(STATE_PATH) for method, path, _ in agent.requests)
    # ... and released once the transcript is in
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    assert agent.wait_for(lambda: agent.states[-1:] == [{"ProtectionEnabled": False}])
    assert agent.states == [{"ProtectionEnabled": True, "ExpiresInMinutes": 30}, {"ProtectionEnabled": False}]


def test_an_aborted_job_releases_the_protection(backend, agent, start_runner):
    start_runner(backend, DummyTranscriber(segments=200, segment_seconds=0.05))
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert agent.wait_for(lambda: agent.states[:1] == [{"ProtectionEnabled": True, "ExpiresInMinutes": 30}])
    backend.abort_job(job_id)
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "failed", timeout=5)
    assert agent.wait_for(lambda: agent.states[-1:] == [{"ProtectionEnabled": False}])


@pytest.mark.parametrize("failure", ["failure", "error", "500", "unreachable"])
def test_a_failing_agent_never_breaks_transcription(backend, agent, start_runner, failure, caplog):
    if failure == "unreachable":
        agent.close()
    else:
        agent.fail = failure
    start_runner(backend, DummyTranscriber(segments=3, segment_seconds=0.05))
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    assert backend.jobs[job_id].error_msg is None
    assert any("task scale-in protection failed" in r.getMessage() for r in caplog.records)


def test_no_agent_no_requests(backend, start_runner, monkeypatch):
    monkeypatch.delenv("ECS_AGENT_URI", raising=False)
    runner, _ = start_runner(backend, DummyTranscriber(segments=2, segment_seconds=0.05))
    job_id = backend.submit_job({"model": "tiny.en", "language": "en"})
    assert backend.wait_for(lambda: backend.jobs[job_id].state == "success", timeout=10)
    assert not runner.protection.enabled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_protection_is_renewed_before_it_expires_and_failures_are_retried(agent):
    clock = Clock()
    protection = TaskProtection(agent.uri, minutes=30, renew_after=600, retry_after=15, clock=clock)
    protection.hold()
    assert agent.states == [{"ProtectionEnabled": True, "ExpiresInMinutes": 30}]
    clock.now += 599
    protection.renew()  # heartbeats in between send nothing
    assert len(agent.states) == 1
    clock.now += 1
    protection.renew()  # 10 minutes on: renewed for another 30
    assert len(agent.states) == 2 and agent.states[-1]["ProtectionEnabled"] is True
    # a release the agent refuses is owed: retried (not before retry_after) until it gets through
    agent.fail = "error"
    protection.release()
    assert agent.states[-1] == {"ProtectionEnabled": False}
    protection.renew()
    assert len(agent.states) == 3  # too soon to retry
    agent.fail = None
    clock.now += 15
    protection.renew()
    assert agent.states[-1] == {"ProtectionEnabled": False} and len(agent.states) == 4
    clock.now += 3600
    protection.renew()  # released: nothing more to send
    assert len(agent.states) == 4


def test_a_failed_protection_is_retried_while_the_job_runs(agent):
    clock = Clock()
    protection = TaskProtection(agent.uri, retry_after=15, clock=clock)
    agent.fail = "failure"
    protection.hold()
    clock.now += 15
    agent.fail = None
    protection.renew()
    assert agent.states == [{"ProtectionEnabled": True, "ExpiresInMinutes": 30}] * 2
    clock.now += 60
    protection.renew()
    assert len(agent.states) == 2  # protected now: nothing due until the renewal

