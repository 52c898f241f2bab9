"""POST /api/admins/create_runner and DELETE /api/admins/invalidate_runner (spec §3.7)."""
from __future__ import annotations

from chalicelib.services import tokens
from chalicelib.store import runners as runner_store
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
