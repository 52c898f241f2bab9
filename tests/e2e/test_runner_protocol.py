"""The runner protocol over real HTTP: moto's server and Chalice's local server in this process.

The stock runner's expectations are checked on the wire: exact ``application/json``, audio bytes
with an audio/* type and no redirect, ``job_assigned`` on the first heartbeat after assignment.
"""
from __future__ import annotations

import json

import pytest
import requests

from chalicelib.services import leases
from tests.jobs_support import tiny_wav, TRANSCRIPT, HttpRunner, HttpStack, make_runner, make_user, multipart


@pytest.fixture(scope="module")
def stack():
    with HttpStack() as running:
        yield running


def _submit(stack, token: str, data: bytes) -> int:
    raw, ctype = multipart(data, filename="episode.flac", content_type="audio/flac")
    r = requests.post(f"{stack.url}/api/jobs/submit_job", data=raw, headers={"Content-Type": ctype},
                      cookies={"token": token}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", r.text
    return int(r.json())


def _info(stack, token: str, job_id: int) -> dict:
    r = requests.get(f"{stack.url}/api/jobs/info", params={"job_ids": job_id},
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    [info] = r.json()
    return info


def test_a_runner_processes_a_job_over_http(stack):
    person = make_user()
    _rid, token = make_runner()
    runner = HttpRunner(stack.url, token)
    runner.register()
    assert runner.heartbeat() == {"abort": False, "job_assigned": False}
    job_id = _submit(stack, person.token, b"fLaC audio bytes")
    assert runner.heartbeat() == {"abort": False, "job_assigned": True}
    info = _info(stack, person.token, job_id)
    assert info["step"] == "runner_assigned" and info["runner_name"] == "test-runner"
    assert runner.job_info()["id"] == job_id
    data, content_type = runner.audio()
    assert data == b"fLaC audio bytes" and content_type == "audio/flac"
    assert runner.heartbeat(55.5) == {"abort": False, "job_assigned": True}
    assert _info(stack, person.token, job_id)["progress"] == 55.5
    r = runner.result(transcript=TRANSCRIPT)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json" and r.json() == "Success"
    r = requests.get(f"{stack.url}/api/jobs/download_transcript", params={"job_id": job_id, "transcript_type": "as_json"},
                     headers={"Authorization": f"Bearer {person.token}"}, timeout=30)
    assert r.headers["Content-Type"] == "application/json" and json.loads(r.json()) == TRANSCRIPT["as_json"]
    assert _info(stack, person.token, job_id)["step"] == "downloaded"
    runner.unregister()


def test_runner_death_the_sweeper_requeues_and_another_runner_finishes(stack, monkeypatch):
    from chalicelib import schedules

    person = make_user()
    _rid, token = make_runner()
    doomed = HttpRunner(stack.url, token)
    doomed.register(name="doomed")
    job_id = _submit(stack, person.token, tiny_wav())
    assert doomed.heartbeat()["job_assigned"] is True
    doomed.audio()
    # GIVEN the runner dies (no more heartbeats) and its lease runs out
    offset = {"s": 0.0}
    import time

    monkeypatch.setattr(leases, "clock", lambda: time.time() + offset["s"])
    offset["s"] = 61
    assert _info(stack, person.token, job_id)["step"] == "pending_runner"
    _rid, token = make_runner()
    rescuer = HttpRunner(stack.url, token)
    rescuer.register(name="rescuer")
    # WHEN the sweeper runs
    assert schedules.sweep_runners() == {"released": 1, "assigned": 1}
    # THEN the other runner gets the job and finishes it, and the dead one is refused
    assert rescuer.heartbeat()["job_assigned"] is True
    assert rescuer.job_info()["id"] == job_id
    rescuer.audio()
    assert rescuer.result(transcript=TRANSCRIPT).json() == "Success"
    info = _info(stack, person.token, job_id)
    assert info["step"] == "success" and info["runner_name"] == "rescuer"
    r = requests.post(f"{doomed.base}/heartbeat", params={"session_token": doomed.session}, json={},
                      headers=doomed.http.headers, timeout=30)
    assert r.status_code == 403
    rescuer.unregister()


def test_long_poll_sees_a_new_job_quickly(stack):
    import threading
    import time

    person = make_user()
    _rid, token = make_runner()
    runner = HttpRunner(stack.url, token)
    runner.register()
    answers: list[tuple[float, dict]] = []

    def wait() -> None:
        answers.append((time.monotonic(), runner.wait_for_job(10)))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    _submit(stack, person.token, tiny_wav())
    submitted = time.monotonic()
    waiter.join(15)
    [(answered, answer)] = answers
    assert answer == {"abort": False, "job_assigned": True}
    assert answered - submitted < 2.0
    runner.unregister()
