"""The runner routes (spec §3.6) and protocol (§6) through the test client."""
from __future__ import annotations

import pytest

from chalicelib.services import protocol
from chalicelib.store import runners as runner_store
from chalicelib.services import events, tokens
from tests.jobs_support import TRANSCRIPT, RUNNER_INFO, RunnerClient, make_runner, make_user, submit, tiny_wav  # noqa: F401
from tests.factories import LeaseClock
from tests.support import body

FIRST_AUDIO = tiny_wav(7)  # audio the runner gets back byte for byte


@pytest.fixture
def runner(api) -> RunnerClient:
    _rid, token = make_runner()
    client = RunnerClient(api, token)
    assert client.register().status_code == 200
    return client



def test_register_returns_id_and_session_token_stored_hashed(api):
    runner_id, token = make_runner()
    client = RunnerClient(api, token)
    data = body(client.register())
    assert data["id"] == runner_id and len(data["session_token"]) == 43
    row = runner_store.get(tokens.hash_secret(token))
    assert row.session_hash == tokens.hash_secret(data["session_token"])
    assert token not in repr(row) and data["session_token"] not in repr(row)
    # already online → 403; after unregister it may register again (stock runner's crash recovery)
    assert client.register().status_code == 403
    assert body(client.unregister()) == "Success"
    assert body(client.unregister()) == "Success"  # no error when offline
    assert client.register().status_code == 200


def test_register_validates_its_body(api):
    _rid, token = make_runner()
    r = api.post("/api/runners/register", json={**RUNNER_INFO, "priority": 0, "name": "x" * 41}, token=token)
    locs = [d["loc"] for d in body(r)["detail"]]
    assert r.status_code == 422 and ["body", "priority"] in locs and ["body", "name"] in locs
    r = api.post("/api/runners/register", json={"name": "x"}, token=token)
    assert r.status_code == 422


def test_runner_gates(api, runner):
    # no bearer / unknown token → 401 with WWW-Authenticate
    for token in (None, "not-a-runner-token", make_user().api_token):
        r = api.post("/api/runners/heartbeat", json={}, token=token, query={"session_token": runner.session})
        assert r.status_code == 401 and r.headers.get("WWW-Authenticate") == "Bearer"
        assert api.post("/api/runners/register", json=RUNNER_INFO, token=token).status_code == 401
        assert api.post("/api/runners/unregister", token=token).status_code == 401
    # missing session token → 422 in FastAPI's shape
    r = api.post("/api/runners/heartbeat", json={}, token=runner.token)
    assert r.status_code == 422
    assert body(r)["detail"] == [{"type": "missing", "loc": ["query", "session_token"], "msg": "Field required",
                                  "input": None}]
    # ... but an unknown token without a session is still 401 (gate order)
    assert api.post("/api/runners/heartbeat", json={}, token="nope").status_code == 401
    # wrong session → 403; offline → 403
    r = api.post("/api/runners/heartbeat", json={}, token=runner.token, query={"session_token": "wrong"})
    assert r.status_code == 403
    runner.unregister()
    assert runner.heartbeat().status_code == 403
    # user tokens on runner routes and runner tokens on user routes are unknown tokens
    assert api.get("/api/jobs/default_settings", token=runner.token).status_code == 401


def test_heartbeat_extends_the_lease_and_expired_runners_are_offline(api, runner, monkeypatch):
    clock = LeaseClock(monkeypatch)
    clock.advance(50)
    assert body(runner.heartbeat()) == {"abort": False, "job_assigned": False}
    clock.advance(50)  # 100 s after registering, 50 s after the heartbeat: still online
    assert runner.heartbeat().status_code == 200
    clock.advance(61)
    assert runner.heartbeat().status_code == 403
    assert runner.register().status_code == 200  # an expired runner may register again


def test_full_job_cycle_with_email_notification(api, runner, monkeypatch):
    sent = []
    monkeypatch.setattr("chalicelib.mail.send_job_success_email", lambda *a: sent.append(("ok", *a)))
    monkeypatch.setattr("chalicelib.mail.send_job_failure_email", lambda *a: sent.append(("failed", *a)))
    person = make_user()
    settings_id = body(api.post("/api/jobs/submit_settings", json={"email_notification": True, "language": "de"},
                                token=person.token))
    first = body(submit(api, person.token, settings_id=settings_id, data=FIRST_AUDIO, content_type="video/webm"))
    second = body(submit(api, person.token, settings_id=settings_id))

    assert body(runner.heartbeat()) == {"abort": False, "job_assigned": True}
    info = body(runner.job_info())
    assert info["id"] == first and info["settings"]["language"] == "de"
    audio = runner.audio()
    assert audio.status_code == 200 and audio.body == FIRST_AUDIO and audio.headers["Content-Type"] == "video/webm"
    assert runner.audio().body == FIRST_AUDIO  # repeatable
    assert body(runner.heartbeat(12.5)) == {"abort": False, "job_assigned": True}
    assert body(runner.result(transcript=TRANSCRIPT)) == "Success"
    assert sent == [("ok", person.user.email, first, "talk.wav")]
    # the runner is idle and got the next job at once
    assert body(runner.heartbeat()) == {"abort": False, "job_assigned": True}
    assert body(runner.job_info())["id"] == second
    runner.audio()
    assert body(runner.result(transcript=TRANSCRIPT, error_msg="model crashed")) == "Success"  # both → failed
    assert sent[-1] == ("failed", person.user.email, second, "talk.wav", "model crashed")
    infos = {i["id"]: i for i in body(api.get("/api/jobs/info", query={"job_ids": [first, second]}, token=person.token))}
    assert infos[first]["step"] == "success" and infos[second]["step"] == "failed"
    # the audio is gone from S3 once the job finished
    from chalicelib import aws
    from chalicelib.settings import environment
    assert aws.client("s3").list_objects_v2(Bucket=environment().bucket, Prefix="audio/").get("KeyCount") == 0
    updates = [e.job_id for e in events.read(person.user.id).entries if e.event == "job_updated"]
    assert updates.count(first) == 2  # assigned, finished (progress is read from the runner row, never logged)


def test_retrieve_and_submit_without_a_job(api, runner):
    assert runner.job_info().status_code == 400
    assert runner.audio().status_code == 400
    assert runner.result(error_msg="x").status_code == 400
    person = make_user()
    submit(api, person.token)
    assert runner.job_info().status_code == 200
    assert runner.result(error_msg="x").status_code == 400  # not in process before fetching the audio


def test_submit_result_needs_transcript_or_error(api, runner):
    submit(api, make_user().token)
    runner.audio()
    r = runner.call("POST", "/api/runners/submit_job_result", json={})
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body"]
    r = runner.call("POST", "/api/runners/submit_job_result", json={"transcript": {"as_txt": "x"}})
    assert r.status_code == 422
    r = runner.heartbeat(101)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body", "progress"]


def test_unregister_puts_the_job_back_and_another_runner_finishes_it(api, runner):
    person = make_user()
    job_id = body(submit(api, person.token))
    runner.audio()
    assert body(runner.unregister()) == "Success"
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "pending_runner" and info["runner_id"] is None and info["progress"] == 0
    _rid, token = make_runner()
    other = RunnerClient(api, token)
    other.register(name="other")
    assert body(other.job_info())["id"] == job_id
    other.audio()
    other.result(transcript=TRANSCRIPT)
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "success" and info["runner_name"] == "other"


def test_unregister_while_aborting_fails_the_job_and_never_requeues_it(api, runner):
    person = make_user()
    job_id = body(submit(api, person.token))
    runner.audio()
    api.post("/api/jobs/abort", json=[job_id], token=person.token)
    runner.unregister()
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "failed"
    assert runner.register().status_code == 200
    assert body(runner.heartbeat())["job_assigned"] is False


def test_expired_runner_gets_403_and_its_job_goes_to_another_runner(api, runner, monkeypatch):
    clock = LeaseClock(monkeypatch)
    person = make_user()
    job_id = body(submit(api, person.token))
    runner.audio()
    clock.advance(61)
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "pending_runner" and info["runner_id"] is None  # reads as pending at once
    _rid, token = make_runner()
    other = RunnerClient(api, token)
    other.register()
    assert body(other.heartbeat())["job_assigned"] is False  # not yet released
    assert runner.heartbeat().status_code == 403  # the dead runner's own call releases it ...
    assert body(other.heartbeat())["job_assigned"] is True  # ... and the job moves on
    assert runner.result(transcript=TRANSCRIPT).status_code == 403  # its late result is refused


def test_sweeper_requeues_jobs_of_expired_runners(api, runner, monkeypatch):
    from chalicelib import schedules

    clock = LeaseClock(monkeypatch)
    person = make_user()
    running = body(submit(api, person.token))
    runner.audio()
    aborting = body(submit(api, person.token))
    _rid, token = make_runner()
    second = RunnerClient(api, token)
    second.register()
    second.audio()
    api.post("/api/jobs/abort", json=[aborting], token=person.token)
    clock.advance(30)
    _rid, token = make_runner()
    third = RunnerClient(api, token)
    third.register()  # idle, lease 30 s longer than the others
    clock.advance(35)
    result = schedules.sweep_runners()
    assert result == {"released": 2, "assigned": 1}
    infos = {i["id"]: i for i in body(api.get("/api/jobs/info", query={"job_ids": [running, aborting]},
                                              token=person.token))}
    assert infos[aborting]["step"] == "failed"  # aborting jobs finish as failed, never requeued
    assert infos[running]["step"] == "runner_assigned" and infos[running]["runner_id"] == third.id
    assert schedules.sweep_runners() == {"released": 0, "assigned": 0}


def test_heartbeat_progress_reaches_streams_from_the_runner_row(api, runner):
    from chalicelib.services import event_stream

    person = make_user()
    job_id = body(submit(api, person.token))
    runner.audio()
    before = events.latest_seq(person.user.id)
    first = event_stream.stream(person.user.id, None)
    assert f"id: {before}~p{job_id}:0\n" in first and "event: job_" not in first  # a new client learns the state
    runner.heartbeat(10)
    runner.heartbeat(10)
    assert events.latest_seq(person.user.id) == before  # heartbeats write nothing to the log
    seen = f"{before}~p{job_id}:0"
    moved = event_stream.stream(person.user.id, before, event_stream.Position.parse(seen).progress)
    assert moved.count("event: job_updated") == 1 and f"data: {job_id}\n" in moved
    assert f"id: {before}~p{job_id}:10\n" in moved
    same = event_stream.stream(person.user.id, before, {job_id: 10})
    assert "event: job_" not in same  # unchanged progress: no event
    runner.result(transcript=TRANSCRIPT)
    done = event_stream.stream(person.user.id, before, {job_id: 10})
    assert done.count("event: job_updated") == 1 and "~p" not in done  # the result event; nothing running


@pytest.fixture
def dynamodb_calls():
    """DynamoDB operations made while the test runs (recorded on PynamoDB's clients)."""
    from chalicelib.store import ALL_MODELS

    calls: list[str] = []
    clients = {id(c): c for c in (m._get_connection().connection.client for m in ALL_MODELS)}.values()

    def record(model, **_kw):
        calls.append(model.name)

    for client in clients:
        client.meta.events.register("before-parameter-build.dynamodb.*", record)
    yield calls
    for client in clients:
        client.meta.events.unregister("before-parameter-build.dynamodb.*", record)


def test_runner_calls_change_their_row_in_the_update_that_authenticates_them(api, runner, dynamodb_calls):
    person = make_user()
    job_id = body(submit(api, person.token))
    dynamodb_calls.clear()
    assert runner.audio().status_code == 200
    assert dynamodb_calls == ["UpdateItem"]  # lease + "in process"
    dynamodb_calls.clear()
    assert body(runner.heartbeat(40)) == {"abort": False, "job_assigned": True}
    assert dynamodb_calls == ["UpdateItem"]  # lease + progress (streams read it from the row)
    dynamodb_calls.clear()
    runner.heartbeat(40)
    assert dynamodb_calls == ["UpdateItem"]
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "runner_in_progress" and info["progress"] == 40.0


def test_progress_of_an_aborted_job_is_not_stored(api, runner):
    person = make_user()
    job_id = body(submit(api, person.token))
    runner.audio()
    runner.heartbeat(30)
    assert body(api.post("/api/jobs/abort", json=[job_id], token=person.token)) == "Success"
    assert body(runner.heartbeat(60)) == {"abort": True, "job_assigned": False}
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "aborting" and info["progress"] == 30.0
    assert runner.audio().status_code == 405  # the "in process" mark is refused, the lease still extended


def test_progress_reported_before_the_audio_is_fetched_is_ignored(api, runner):
    person = make_user()
    job_id = body(submit(api, person.token))
    assert body(runner.heartbeat(70)) == {"abort": False, "job_assigned": True}
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "runner_assigned" and info["progress"] == 0.0


def test_retrieve_job_audio_too_large_names_the_extension(api, runner, monkeypatch):
    submit(api, make_user().token, data=tiny_wav(100))
    monkeypatch.setattr(protocol, "MAX_INLINE_AUDIO_BYTES", 50)
    r = runner.audio()
    assert r.status_code == 413 and "/api/wisp/runners/audio_url" in body(r)["detail"]


def test_priority_decides_which_idle_runner_gets_the_job(api):
    clients = []
    for priority in (10, 300, 20):
        _rid, token = make_runner()
        client = RunnerClient(api, token)
        client.register(priority=priority)
        clients.append(client)
    person = make_user()
    submit(api, person.token)
    assert [body(c.heartbeat())["job_assigned"] for c in clients] == [False, True, False]
    submit(api, person.token)
    assert [body(c.heartbeat())["job_assigned"] for c in clients] == [False, True, True]


def test_a_result_looks_at_the_queue_only_when_it_moved(api, runner, dynamodb_calls):
    from chalicelib.store.counters import JOB, Counter

    person = make_user()
    first = body(submit(api, person.token))  # straight to the idle runner, no queue involved
    runner.audio()
    dynamodb_calls.clear()
    assert body(runner.result(transcript=TRANSCRIPT)) == "Success"
    assert dynamodb_calls == ["BatchGetItem", "TransactWriteItems"]  # runner row + queue generation; result
    # a job queued while the runner is busy raises the generation: the runner finds it when it finishes
    second = body(submit(api, person.token))
    runner.audio()
    before = Counter.get(JOB).generation_or_zero
    third = body(submit(api, person.token))
    assert Counter.get(JOB).generation_or_zero == before + 1
    dynamodb_calls.clear()
    assert body(runner.result(transcript=TRANSCRIPT)) == "Success"
    assert "Query" in dynamodb_calls
    assert body(runner.job_info())["id"] == third
    infos = body(api.get("/api/jobs/info", query={"job_ids": [first, second]}, token=person.token))
    assert [i["step"] for i in infos] == ["success", "success"]


def test_a_job_put_back_in_the_queue_reaches_a_busy_runner_when_it_finishes(api, runner):
    person = make_user()
    first = body(submit(api, person.token))
    runner.audio()
    other = RunnerClient(api, make_runner()[1])
    other.register()
    second = body(submit(api, person.token))  # the other runner holds it ...
    assert body(other.job_info())["id"] == second
    assert body(other.unregister()) == "Success"  # ... and lets it go: back in the queue
    assert body(runner.result(transcript=TRANSCRIPT)) == "Success"
    assert body(runner.job_info())["id"] == second
    [info] = body(api.get("/api/jobs/info", query={"job_ids": first}, token=person.token))
    assert info["step"] == "success"


def test_result_with_a_wrong_session_or_after_expiry_is_403(api, runner, monkeypatch):
    person = make_user()
    body(submit(api, person.token))
    runner.audio()
    r = runner.call("POST", "/api/runners/submit_job_result", query={"session_token": "wrong"},
                    json={"transcript": TRANSCRIPT, "error_msg": None})
    assert r.status_code == 403 and "session" in body(r)["detail"]
    LeaseClock(monkeypatch).advance(61)
    r = runner.result(transcript=TRANSCRIPT)
    assert r.status_code == 403 and "online" in body(r)["detail"]


def test_the_event_log_knows_which_jobs_are_in_flight(api):
    person = make_user()
    uid = person.user.id
    queued = body(submit(api, person.token))  # no runner online: it waits
    aborted = body(submit(api, person.token))
    assert events.read(uid).waiting == {queued, aborted} and events.read(uid).running == {}
    assert body(api.post("/api/jobs/abort", json=[aborted], token=person.token)) == "Success"
    assert events.read(uid).waiting == {queued}
    client = RunnerClient(api, make_runner()[1])
    client.register()  # takes the waiting job
    log = events.read(uid)
    assert log.waiting == frozenset() and set(log.running) == {queued}
    client.audio()
    assert body(client.unregister()) == "Success"  # back to the queue
    log = events.read(uid)
    assert log.waiting == {queued} and log.running == {}
    client.register()
    client.audio()
    client.result(transcript=TRANSCRIPT)
    log = events.read(uid)
    assert log.waiting == frozenset() and log.running == {}
