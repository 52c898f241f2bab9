"""POST /api/admins/create_runner and DELETE /api/admins/invalidate_runner (spec §3.7), and Wisp's
GET /api/wisp/admin/runners (README, Wisp API extensions)."""
from __future__ import annotations

from datetime import datetime

from chalicelib.services import tokens
from chalicelib.store import runners as runner_store
from tests.factories import LeaseClock
from tests.jobs_support import TRANSCRIPT, RunnerClient, make_user, submit  # noqa: F401
from tests.support import body


def test_create_runner_returns_id_and_token_shown_once(api):
    admin = make_user(admin=True)
    first = body(api.post("/api/admins/create_runner", token=admin.token))
    second = body(api.post("/api/admins/create_runner", token=admin.token))
    assert set(first) == {"id", "token"} and second["id"] > first["id"] and len(first["token"]) == 43
    row = runner_store.get(tokens.hash_secret(first["token"]))
    assert row.id == first["id"] and first["token"] not in repr(row)
    assert RunnerClient(api, first["token"]).register().status_code == 200


def test_invalidate_runner_requeues_its_job_and_detaches_finished_jobs(api):
    admin, person = make_user(admin=True), make_user()
    created = body(api.post("/api/admins/create_runner", token=admin.token))
    runner = RunnerClient(api, created["token"])
    runner.register(name="doomed", version="9.9")
    finished = body(submit(api, person.token))
    runner.audio()
    runner.result(transcript=TRANSCRIPT)
    running = body(submit(api, person.token))
    runner.audio()

    r = api.delete("/api/admins/invalidate_runner", query={"runner_id": created["id"]}, token=admin.token)
    assert r.status_code == 200 and isinstance(body(r), str)
    infos = {i["id"]: i for i in body(api.get("/api/jobs/info", query={"job_ids": [finished, running]},
                                              token=person.token))}
    assert infos[running]["step"] == "pending_runner" and infos[running]["runner_id"] is None
    assert infos[finished]["runner_id"] is None
    assert infos[finished]["runner_name"] == "doomed" and infos[finished]["runner_version"] == "9.9"
    # its token stops working at once
    assert runner.heartbeat().status_code == 401
    assert runner.register().status_code == 401
    # unknown ids are fine
    r = api.delete("/api/admins/invalidate_runner", query={"runner_id": 424242}, token=admin.token)
    assert r.status_code == 200


def test_invalidate_runner_validates_its_query(api):
    admin = make_user(admin=True)
    r = api.delete("/api/admins/invalidate_runner", token=admin.token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["query", "runner_id"]


RUNNERS = "/api/wisp/admin/runners"


def _listed(api, admin) -> dict[int, dict]:
    r = api.get(RUNNERS, token=admin.token)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    return {entry["id"]: entry for entry in body(r)}


def test_list_runners_shows_each_state_job_and_heartbeat(api, monkeypatch):
    # GIVEN four runners: never registered, idle, holding a job, processing one
    clock = LeaseClock(monkeypatch)
    admin, person = make_user(admin=True), make_user()
    created = [body(api.post("/api/admins/create_runner", token=admin.token)) for _ in range(4)]
    never, idle, assigned, processing = (RunnerClient(api, c["token"]) for c in created)
    processing.register(name="busy", priority=200)
    first = body(submit(api, person.token))
    processing.audio()
    processing.heartbeat(progress=42.5)
    assigned.register(name="waiting", version="2.0", git_hash="f00d")
    second = body(submit(api, person.token))
    idle.register(name="spare")
    clock.advance(10)
    idle.heartbeat()

    # WHEN the admin lists the runners
    runners = _listed(api, admin)

    # THEN each has its state, job and last heartbeat, in id order
    ids = [c["id"] for c in created]
    assert list(runners) == ids
    assert set(runners[ids[0]]) == {"id", "name", "version", "git_hash", "source_code_url", "priority", "state",
                                    "job_id", "progress", "last_heartbeat", "created_at"}
    assert runners[ids[0]] | {"created_at": None} == {
        "id": ids[0], "name": None, "version": None, "git_hash": None, "source_code_url": None, "priority": None,
        "state": "offline", "job_id": None, "progress": None, "last_heartbeat": None, "created_at": None}
    assert runners[ids[1]]["state"] == "idle" and runners[ids[1]]["job_id"] is None
    assert runners[ids[1]]["name"] == "spare"
    assert runners[ids[2]]["state"] == "assigned" and runners[ids[2]]["job_id"] == second
    assert runners[ids[2]]["version"] == "2.0" and runners[ids[2]]["git_hash"] == "f00d"
    assert runners[ids[3]] | {"last_heartbeat": None, "created_at": None} == {
        "id": ids[3], "name": "busy", "version": "1.0.0", "git_hash": "abc123",
        "source_code_url": "https://example.org/r", "priority": 200, "state": "processing", "job_id": first,
        "progress": 42.5, "last_heartbeat": None, "created_at": None}
    beats = {i: datetime.fromisoformat(runners[i]["last_heartbeat"]).timestamp() for i in ids[1:]}
    assert 9 < beats[ids[1]] - beats[ids[3]] < 12  # the idle one called 10 s later
    assert all(datetime.fromisoformat(runners[i]["created_at"]).tzinfo is not None for i in ids)

    # WHEN the leases run out, THEN every runner is offline; the expired ones keep their last heartbeat
    clock.advance(61)
    runners = _listed(api, admin)
    assert {r["state"] for r in runners.values()} == {"offline"}
    assert datetime.fromisoformat(runners[ids[1]]["last_heartbeat"]).timestamp() == beats[ids[1]]

    # an invalidated runner is gone from the list
    api.delete("/api/admins/invalidate_runner", query={"runner_id": ids[2]}, token=admin.token)
    assert ids[2] not in _listed(api, admin)


def test_list_runners_is_empty_without_runners(api):
    assert body(api.get(RUNNERS, token=make_user(admin=True).token)) == []


def test_list_runners_needs_an_admin_login(api):
    admin, plain = make_user(admin=True), make_user()
    _rid, token = body(api.post("/api/admins/create_runner", token=admin.token)).values()
    assert api.get(RUNNERS).status_code == 401
    assert api.get(RUNNERS, token=token).status_code == 401  # a runner token is no login
    assert api.get(RUNNERS, token=plain.token).status_code == 403
    assert api.get(RUNNERS, token=admin.api_token).status_code == 403  # API tokens are never admin
    assert api.get(RUNNERS, token=make_user(verified=False).token).status_code == 403
