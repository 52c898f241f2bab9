"""GET /api/jobs/events over real HTTP, read with a real SSE client (sseclient-py).

Wisp runs behind Chalice's local gateway in a subprocess (``local_stack.make_server``), talking to
moto's server, which runs in a thread of this process. moto's server and the ``mock_aws`` of the
autouse fixture share this process's in-memory backends, so rows written here (users, tokens,
events) are what the subprocess reads, and every test still starts from empty tables.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import sseclient

from chalicelib.services import event_stream, events, tokens
from chalicelib.store.users import User
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]
API_GATEWAY_LIMIT_S = 29.0

SERVE = """
from chalicelib.local_stack import make_server
server = make_server(0)
print("PORT", server.server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def base_url():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    env = dict(os.environ, WISP_AWS_ENDPOINT_URL=f"http://{host}:{port}", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", SERVE], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        match = re.match(r"PORT (\d+)", line)
        assert match, f"server did not start: {line!r}"
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        moto.stop()


def new_user(*, verified: bool = True) -> User:
    return make_user(verified=verified).user


@dataclass
class Response:
    status: int
    content_type: str
    events: list  # sseclient Events (only those with data, as browsers dispatch them)
    ids: list[str]  # every id: line (in full, with any progress state), including id-only blocks
    retry_ms: int | None
    seconds: float


def get_events(base_url: str, *, token: str | None = None, cookie: str | None = None,
               last_event_id: str | None = None, query: dict | None = None) -> Response:
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = f"token={cookie}"
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    started = time.monotonic()
    r = requests.get(f"{base_url}/api/jobs/events", headers=headers, params=query, stream=True, timeout=60)
    raw: list[bytes] = []

    def chunks():
        for chunk in r.iter_content(chunk_size=None):
            raw.append(chunk)
            yield chunk

    received = list(sseclient.SSEClient(chunks()).events()) if r.status_code == 200 else []
    text = b"".join(raw).decode("utf-8")
    retry = re.findall(r"^retry: (\d+)$", text, re.M)
    return Response(r.status_code, r.headers.get("Content-Type", ""), received, re.findall(r"^id: (\S+)$", text, re.M),
                    int(retry[-1]) if retry else None, time.monotonic() - started)


@dataclass
class Tab:
    """What a browser's EventSource does: reconnect after ``retry`` with ``Last-Event-ID``."""

    base_url: str
    token: str
    last_id: str | None = None
    received: list = field(default_factory=list)

    def connect(self) -> Response:
        response = get_events(self.base_url, token=self.token, last_event_id=self.last_id)
        assert response.status == 200
        assert response.seconds < API_GATEWAY_LIMIT_S
        self.received.extend(response.events)
        if response.ids:
            self.last_id = response.ids[-1]
        return response

    def follow(self, until, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            response = self.connect()
            if until():
                return
            time.sleep(response.retry_ms / 1000)


# ------------------------------------------------------------------------------------------


def test_response_shape_and_position_of_a_new_connection(base_url):
    # GIVEN a user with history (recent, so the user counts as live)
    user = new_user()
    for job_id in (1, 2):
        events.publish(user.id, events.JOB_CREATED, job_id)
    secret = tokens.issue_session(user, name="t", admin=False).secret
    # WHEN a browser connects without Last-Event-ID (with the session cookie, like the frontend)
    r = get_events(base_url, cookie=secret)
    # THEN a short text/event-stream response that replays nothing but names the position
    assert r.status == 200
    assert r.content_type == "text/event-stream; charset=utf-8"
    assert r.events == []
    assert r.ids == ["2"]
    assert r.retry_ms == event_stream.LIVE.retry_ms
    assert r.seconds < 5


def test_quiet_user_gets_the_idle_retry(base_url):
    r = get_events(base_url, token=tokens.issue_api_token(new_user(), name="script").secret)
    assert (r.status, r.ids, r.retry_ms) == (200, ["0"], event_stream.IDLE.retry_ms)
    assert r.seconds < API_GATEWAY_LIMIT_S


def test_events_published_while_no_stream_is_open_are_replayed(base_url):
    # GIVEN a tab that has connected once
    user = new_user()
    tab = Tab(base_url, tokens.issue_session(user, name="t", admin=False).secret)
    tab.connect()
    assert tab.last_id == "0"
    # AND events published while it is disconnected (another user's event too)
    events.publish(user.id, events.JOB_CREATED, 7)
    events.publish(user.id, events.JOB_UPDATED, 7)
    events.publish(new_user().id, events.JOB_CREATED, 8)
    events.publish(user.id, events.JOB_DELETED, 7)
    # WHEN it reconnects with Last-Event-ID
    tab.connect()
    # THEN it gets exactly its own missed events, in order, with their ids
    assert [(e.event, e.data, e.id) for e in tab.received] == [
        ("job_created", "7", "1"), ("job_updated", "7", "2"), ("job_deleted", "7", "3")]
    assert tab.last_id == "3"
    # AND the next reconnect has nothing new
    assert tab.connect().events == []


def test_last_event_id_query_parameter_for_clients_without_headers(base_url):
    user = new_user()
    secret = tokens.issue_session(user, name="t", admin=False).secret
    for job_id in (1, 2, 3):
        events.publish(user.id, events.JOB_UPDATED, job_id)
    r = get_events(base_url, token=secret, query={"last_event_id": "1"})
    assert [e.data for e in r.events] == ["2", "3"]
    # the header wins over the URL (EventSource keeps the URL and sends the header on reconnect)
    r = get_events(base_url, token=secret, query={"last_event_id": "1"}, last_event_id="2")
    assert [e.data for e in r.events] == ["3"]


def test_events_arrive_within_a_few_seconds(base_url):
    # GIVEN a live tab following the stream
    user = new_user()
    events.publish(user.id, events.JOB_CREATED, 1)
    tab = Tab(base_url, tokens.issue_session(user, name="t", admin=False).secret)
    tab.connect()
    # WHEN a job update is published a moment later (a runner reporting progress)
    published = {}

    def publish_later():
        time.sleep(1.0)
        published["at"] = time.monotonic()
        events.publish(user.id, events.JOB_UPDATED, 1)

    worker = threading.Thread(target=publish_later)
    worker.start()
    tab.follow(until=lambda: any(e.event == "job_updated" for e in tab.received), timeout=20)
    arrived = time.monotonic()
    worker.join()
    # THEN the tab has it within the live retry plus a little
    assert [(e.event, e.data) for e in tab.received] == [("job_updated", "1")]
    assert arrived - published["at"] < event_stream.LIVE.retry_ms / 1000 + 2.0


def test_no_token_is_401(base_url):
    r = get_events(base_url)
    assert r.status == 401
    assert r.content_type == "application/json"


def test_unknown_token_is_401(base_url):
    assert get_events(base_url, token="made-up").status == 401


def test_unverified_user_is_403(base_url):
    secret = tokens.issue_session(new_user(verified=False), name="t", admin=False).secret
    r = get_events(base_url, cookie=secret)
    assert r.status == 403
    assert r.content_type == "application/json"


def test_runner_progress_reaches_a_following_tab_within_a_few_seconds(base_url, api):
    from tests.jobs_support import RunnerClient, make_runner, submit

    # GIVEN a job in progress on a runner, and a tab following the owner's stream
    user = new_user()
    session = tokens.issue_session(user, name="t", admin=False).secret
    runner = RunnerClient(api, make_runner()[1])
    runner.register()
    job_id = int(submit(api, session).body)
    runner.audio()
    tab = Tab(base_url, session)
    tab.connect()
    assert tab.last_id.endswith(f"~{job_id}:0") and tab.received == []
    # WHEN the runner reports progress
    reported = time.monotonic()
    runner.heartbeat(35)
    tab.follow(until=lambda: bool(tab.received), timeout=20)
    # THEN the tab gets job_updated for the job within the live retry, with the new state in its id
    assert [(e.event, e.data) for e in tab.received] == [("job_updated", str(job_id))]
    assert time.monotonic() - reported < event_stream.LIVE.retry_ms / 1000 + 2.0
    assert tab.last_id.endswith(f"~{job_id}:35")
