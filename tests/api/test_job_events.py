"""GET /api/jobs/events over real HTTP, read with a real SSE client (sseclient-py).

Wisp runs behind Chalice's local gateway in a subprocess (``wisp_local.stack.make_server``), talking to
moto's server, which runs in a thread of this process. moto's server and the ``mock_aws`` of the
autouse fixture share this process's in-memory backends, so rows written here (users, tokens,
events) are what the subprocess reads, and every test still starts from empty tables.
"""
from __future__ import annotations

from chalicelib.store import lifecycle

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
from wisp_local.stack import make_server
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
    events: list  # sseclient Events of job_* (only those with data, as browsers dispatch them)
    ids: list[str]  # every id: line (in full, with any progress state)
    retry_ms: int | None
    seconds: float
    positions: list[str] = field(default_factory=list)  # the data of wisp_position blocks


def seq_of(position: str) -> str:
    """The sequence number in a position (an SSE id)."""
    return position.split("~", 1)[0]


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
    jobs = [e for e in received if e.event != event_stream.POSITION_EVENT]
    positions = [e.data for e in received if e.event == event_stream.POSITION_EVENT]
    return Response(r.status_code, r.headers.get("Content-Type", ""), jobs, re.findall(r"^id: (\S+)$", text, re.M),
                    int(retry[-1]) if retry else None, time.monotonic() - started, positions)


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
        lifecycle.announce(user.id, events.JOB_CREATED, [job_id])
    secret = tokens.issue_session(user, name="t", admin=False).secret
    # WHEN a browser connects without Last-Event-ID (with the session cookie, like the frontend)
    r = get_events(base_url, cookie=secret)
    # THEN a short text/event-stream response that replays nothing but names the position
    assert r.status == 200
    assert r.content_type == "text/event-stream; charset=utf-8"
    assert r.events == []
    assert [seq_of(i) for i in r.ids] == ["2"] and r.positions == r.ids  # in a block with data, too
    assert r.retry_ms == event_stream.LIVE.retry_ms
    assert r.seconds < 5


def test_quiet_user_gets_the_idle_retry_once_the_connection_is_no_longer_new(base_url):
    user = new_user()
    r = get_events(base_url, token=tokens.issue_api_token(user, name="new").secret)
    # a new connection comes back soon: the stock frontend opens one just before an upload
    assert (r.status, seq_of(r.ids[-1]), r.retry_ms) == (200, "0", event_stream.LIVE.retry_ms)
    opened_long_ago = f"0~cfeed~o{int(time.time()) - event_stream.YOUNG_S - 5}"
    r = get_events(base_url, token=tokens.issue_api_token(user, name="old").secret, last_event_id=opened_long_ago)
    assert (r.status, seq_of(r.ids[-1]), r.retry_ms) == (200, "0", event_stream.IDLE.retry_ms)
    assert r.seconds < API_GATEWAY_LIMIT_S


def test_events_published_while_no_stream_is_open_are_replayed(base_url):
    # GIVEN a tab that has connected once
    user = new_user()
    tab = Tab(base_url, tokens.issue_session(user, name="t", admin=False).secret)
    tab.connect()
    assert seq_of(tab.last_id) == "0"
    # AND events published while it is disconnected (another user's event too)
    lifecycle.announce(user.id, events.JOB_CREATED, [7])
    lifecycle.announce(user.id, events.JOB_UPDATED, [7])
    lifecycle.announce(new_user().id, events.JOB_CREATED, [8])
    lifecycle.announce(user.id, events.JOB_DELETED, [7])
    # WHEN it reconnects with Last-Event-ID
    tab.connect()
    # THEN it gets exactly its own missed events, in order, with their ids
    assert [(e.event, e.data, seq_of(e.id)) for e in tab.received] == [
        ("job_created", "7", "1"), ("job_updated", "7", "2"), ("job_deleted", "7", "3")]
    assert seq_of(tab.last_id) == "3"
    # AND the next reconnect has nothing new
    assert tab.connect().events == []


def test_last_event_id_query_parameter_for_clients_without_headers(base_url):
    user = new_user()
    secret = tokens.issue_session(user, name="t", admin=False).secret
    for job_id in (1, 2, 3):
        lifecycle.announce(user.id, events.JOB_UPDATED, [job_id])
    r = get_events(base_url, token=secret, query={"last_event_id": "1"})
    assert [e.data for e in r.events] == ["2", "3"]
    # the header wins over the URL (EventSource keeps the URL and sends the header on reconnect)
    r = get_events(base_url, token=secret, query={"last_event_id": "1"}, last_event_id="2")
    assert [e.data for e in r.events] == ["3"]


def test_events_arrive_within_a_few_seconds(base_url):
    # GIVEN a live tab following the stream
    user = new_user()
    lifecycle.announce(user.id, events.JOB_CREATED, [1])
    tab = Tab(base_url, tokens.issue_session(user, name="t", admin=False).secret)
    tab.connect()
    # WHEN a job update is published a moment later (a runner reporting progress)
    published = {}

    def publish_later():
        time.sleep(1.0)
        published["at"] = time.monotonic()
        lifecycle.announce(user.id, events.JOB_UPDATED, [1])

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
    assert f"~p{job_id}:0~" in tab.last_id and tab.received == []
    # WHEN the runner reports progress
    reported = time.monotonic()
    runner.heartbeat(35)
    tab.follow(until=lambda: bool(tab.received), timeout=20)
    # THEN the tab gets job_updated for the job within the live retry, with the new state in its id
    assert [(e.event, e.data) for e in tab.received] == [("job_updated", str(job_id))]
    assert time.monotonic() - reported < event_stream.LIVE.retry_ms / 1000 + 2.0
    assert f"~p{job_id}:35~" in tab.last_id


def test_polls_neither_renew_nor_rotate_the_session_so_an_idle_tab_ends_on_time(base_url):
    from datetime import timedelta

    from chalicelib.store.base import now
    from chalicelib.store.tokens import Token

    # GIVEN a session inside its rolling window (any other request would rotate it), last used long ago
    issued = tokens.issue_session(new_user(), name="tab", admin=False)
    expires, used = now() + timedelta(seconds=4), now() - timedelta(hours=1)
    issued.token.update(actions=[Token.expires_at.set(expires), Token.last_usage.set(used)])
    tab = Tab(base_url, issued.secret)
    # WHEN its tab polls the event stream
    for _ in range(3):
        r = requests.get(f"{base_url}/api/jobs/events", cookies={"token": issued.secret},
                         headers={"Last-Event-ID": tab.last_id or ""}, timeout=10)
        assert r.status_code == 200 and "Set-Cookie" not in r.headers
        tab.last_id = re.findall(r"^id: (\S+)$", r.text, re.M)[-1]
    # THEN the session is as it was: same secret, same expiry; only the opening counted as a use
    token = Token.get(issued.token.token_hash)
    assert token.expires_at == expires
    assert token.last_usage > used
    last_use = token.last_usage
    # AND when it expires, the next poll is refused and EventSource gives up
    time.sleep(max(0.0, (expires - now()).total_seconds()) + 0.5)
    assert get_events(base_url, cookie=issued.secret, last_event_id=tab.last_id).status == 401
    assert Token.get(issued.token.token_hash).last_usage == last_use


def test_other_requests_still_rotate_a_session_in_its_rolling_window(base_url):
    from datetime import timedelta

    from chalicelib.store.base import now
    from chalicelib.store.tokens import Token

    issued = tokens.issue_session(new_user(), name="tab", admin=False)
    issued.token.update(actions=[Token.expires_at.set(now() + timedelta(seconds=30))])
    r = requests.get(f"{base_url}/api/users/info", cookies={"token": issued.secret}, timeout=10)
    assert r.status_code == 200 and r.cookies.get("token") not in (None, issued.secret)
