"""Every job route and the two admin runner routes, tried by every kind of caller that must fail.

Callers: anonymous, an unverified user, another user (jobs only: sees nothing of the owner's
jobs), a runner token, and an API token (admin routes: never admin)."""
from __future__ import annotations

import pytest

from tests.jobs_support import TRANSCRIPT, RunnerClient, make_runner, make_user, multipart, submit  # noqa: F401
from tests.support import body

JOB_ROUTES = [
    ("POST", "/api/jobs/submit_settings", {}, {"json": {}}),
    ("GET", "/api/jobs/default_settings", {}, {}),
    ("POST", "/api/jobs/submit_job", {}, "multipart"),
    ("GET", "/api/jobs/count", {"exclude_finished": False, "exclude_downloaded": False}, {}),
    ("GET", "/api/jobs/get", {"start_index": 0, "end_index": 9, "sort_key": "creation_time", "descending": False,
                              "exclude_finished": False, "exclude_downloaded": False}, {}),
    ("GET", "/api/jobs/info", {"job_ids": "JOB"}, {}),
    ("POST", "/api/jobs/abort", {}, {"json": ["JOB"]}),
    ("DELETE", "/api/jobs/delete", {}, {"json": ["JOB"]}),
    ("GET", "/api/jobs/download_transcript", {"job_id": "JOB", "transcript_type": "as_txt"}, {}),
    ("GET", "/api/wisp/jobs/JOB/transcript_url", {"transcript_type": "as_txt"}, {}),
    ("POST", "/api/wisp/uploads", {}, {"json": {"file_name": "a.wav", "content_type": "audio/wav", "size": 10}}),
    ("GET", "/api/wisp/uploads/unknown/parts", {}, {}),
    ("POST", "/api/wisp/uploads/unknown/complete", {}, {"json": {"parts": [{"part_number": 1, "etag": "x"}]}}),
    ("DELETE", "/api/wisp/uploads/unknown", {}, {}),
]
ADMIN_ROUTES = [
    ("POST", "/api/admins/create_runner", {}, {}),
    ("DELETE", "/api/admins/invalidate_runner", {"runner_id": 1}, {}),
]


def _call(api, route, job_id: int, token: str | None):
    method, path, query, extra = route
    path = path.replace("JOB", str(job_id))
    query = {k: (job_id if v == "JOB" else v) for k, v in query.items()}
    if extra == "multipart":
        raw, ctype = multipart()
        return api.request(method, path, query=query, body=raw, headers={"Content-Type": ctype}, token=token)
    kw = dict(extra)
    if "json" in kw and isinstance(kw["json"], list):
        kw["json"] = [job_id]
    return api.request(method, path, query=query, token=token, **kw)


@pytest.fixture
def finished_job(api):
    owner = make_user()
    job_id = body(submit(api, owner.token))
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    runner.audio()
    runner.result(transcript=TRANSCRIPT)
    return owner, job_id, runner


def test_anonymous_unverified_and_runner_callers_are_refused(api, finished_job):
    _owner, job_id, runner = finished_job
    unverified = make_user(verified=False)
    for route in JOB_ROUTES:
        assert _call(api, route, job_id, None).status_code == 401, route
        assert _call(api, route, job_id, runner.token).status_code == 401, route
        expected = 200 if route[1] == "/api/jobs/default_settings" else 403  # gate "user": no verification
        assert _call(api, route, job_id, unverified.token).status_code == expected, route
    for route in ADMIN_ROUTES:
        assert _call(api, route, job_id, None).status_code == 401, route
        assert _call(api, route, job_id, runner.token).status_code == 401, route
        assert _call(api, route, job_id, unverified.token).status_code == 403, route


def test_another_user_never_sees_or_changes_the_job(api, finished_job):
    owner, job_id, _runner = finished_job
    other = make_user()
    results = {route[1]: _call(api, route, job_id, other.token) for route in JOB_ROUTES
               if route[0] != "POST" or route[1] in ("/api/jobs/abort",)}
    assert body(results["/api/jobs/count"]) == 0
    assert body(results["/api/jobs/get"]) == []
    assert body(results["/api/jobs/info"]) == []
    assert body(results["/api/jobs/abort"]) == "Success"  # ignored
    assert body(results["/api/jobs/delete"]) == "Success"  # ignored
    assert results["/api/jobs/download_transcript"].status_code == 400
    assert results["/api/wisp/jobs/JOB/transcript_url"].status_code == 400
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=owner.token))
    assert info["step"] == "success"  # not deleted, not aborted, not marked downloaded


def test_api_tokens_and_plain_sessions_are_not_admin(api):
    admin_user = make_user(admin=True)
    plain = make_user()
    for route in ADMIN_ROUTES:
        assert _call(api, route, 0, admin_user.api_token).status_code == 403, route  # API tokens never admin
        assert _call(api, route, 0, plain.token).status_code == 403, route
        assert _call(api, route, 0, admin_user.token).status_code == 200, route


def test_api_tokens_pass_the_job_routes(api, finished_job):
    owner, job_id, _runner = finished_job
    r = api.get("/api/jobs/download_transcript", query={"job_id": job_id, "transcript_type": "as_txt"},
                token=owner.api_token)
    assert body(r) == TRANSCRIPT["as_txt"]
