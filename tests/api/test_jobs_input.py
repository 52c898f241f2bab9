"""Bad input stopped at the door (issue 12 §5): bounded id lists, an event log that never outgrows
DynamoDB's item limit, content checks (415), no orphan audio from failed submissions, messages
without internals, per-user limits."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
import requests

from chalicelib import aws
from chalicelib.services import assignment, jobs as job_service, limits
from chalicelib.settings import environment
from chalicelib.store import events as log_store
from chalicelib.store import transact
from chalicelib.store.events import EventLog
from tests.jobs_support import WAV, RunnerClient, make_runner, make_user, submit
from tests.support import body, settings_with

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
ITEM_LIMIT = 400 * 1024  # DynamoDB's largest item


def _objects(prefix: str = "") -> list[str]:
    found = aws.client("s3").list_objects_v2(Bucket=environment().bucket, Prefix=prefix)
    return [o["Key"] for o in found.get("Contents", [])]


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", "hello")
    return out.getvalue()


# ------------------------------------------------------------------------------------------
# Id lists and the event log
# ------------------------------------------------------------------------------------------


def test_id_lists_are_bounded_with_a_422(api):
    person = make_user()
    many = list(range(1, 20_001))
    for method, path in (("DELETE", "/api/jobs/delete"), ("POST", "/api/jobs/abort")):
        r = api.request(method, path, json=many, token=person.token)
        assert r.status_code == 422, (path, r.body)
        assert body(r)["detail"][0]["type"] == "too_long"
    r = api.get("/api/jobs/info", query=[("job_ids", i) for i in range(1, 1002)], token=person.token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["query", "job_ids"]
    assert api.get("/api/jobs/info", query=[("job_ids", i) for i in range(1, 1001)], token=person.token).status_code == 200
    # the account still works
    assert submit(api, person.token).status_code == 200
    assert _log_bytes(person.user.id) < ITEM_LIMIT


def _log_bytes(user_id: int) -> int:
    raw = aws.client("dynamodb").get_item(TableName=EventLog.Meta.table_name, Key={"user_id": {"N": str(user_id)}})
    return len(json.dumps(raw.get("Item", {})))


@pytest.fixture
def log_writes():
    """The size of every write request to the event-log table (moto does not enforce the item limit)."""
    sizes: list[int] = []
    client = EventLog._get_connection().connection.client

    def record(model, params, **_kw):
        if model.name in ("UpdateItem", "PutItem") and params.get("TableName") == EventLog.Meta.table_name:
            sizes.append(len(json.dumps(params, default=str)))

    client.meta.events.register("before-parameter-build.dynamodb.*", record)
    yield sizes
    client.meta.events.unregister("before-parameter-build.dynamodb.*", record)


def test_the_event_log_stays_small_whatever_is_published(log_writes):
    # GIVEN a user whose log already has entries
    transact.publish({7: [("job_deleted", i) for i in range(100)]})
    # WHEN one call publishes 6,000 deletions (the request limit bounds routes, not this function;
    # 20,000 in one write is over DynamoDB's item limit, which moto enforces too)
    transact.publish({7: [("job_deleted", 10_000_000 + i) for i in range(6_000)]})
    # THEN no write carried more than a small part of them
    assert log_writes and max(log_writes) < ITEM_LIMIT // 8, max(log_writes)
    # THEN the log is trimmed to at most MAX_ENTRIES, keeps the newest entries, numbers on, and
    # stays far below DynamoDB's item limit
    log = log_store.read(7, consistent=True)
    assert 0 < len(log.entries) <= transact.MAX_ENTRIES
    assert log.entries[-1].job_id == 10_005_999 and log.newest_seq == 6_100
    assert _log_bytes(7) < ITEM_LIMIT // 4


def test_deleting_the_most_ids_at_once_keeps_the_account_working(api):
    person = make_user()
    for _ in range(3):
        assert body(api.delete("/api/jobs/delete", json=list(range(5_000_000, 5_001_000)), token=person.token)) == "Success"
    assert submit(api, person.token).status_code == 200
    assert len(log_store.read(person.user.id, consistent=True).entries) <= transact.MAX_ENTRIES


# ------------------------------------------------------------------------------------------
# Content
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, says", [
    (b"", "empty"),
    (PNG, "image/png"),
    (b"%PDF-1.7\n" + b"\x00" * 100, "application/pdf"),
    (_zip(), "zip"),
    (b"Hello, this is a plain text file, not a recording.\n" * 20, "text"),
    ("Grüße, ein Text. ".encode() * 50, "text"),
])
def test_content_labelled_audio_that_is_not_media_is_415(api, data, says):
    person = make_user()
    r = submit(api, person.token, data=data, content_type="audio/wav")
    assert r.status_code == 415 and says in body(r)["detail"], body(r)
    assert _objects() == []


@pytest.mark.parametrize("data", [
    WAV,
    b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 100,  # MP3
    b"\x1aE\xdf\xa3" + b"\x00\x01\x02" * 100,  # Matroska/WebM
    bytes(range(256)) * 4,  # a format filetype does not know: binary, so it may be audio
])
def test_audio_and_unknown_binary_labelled_audio_are_accepted(api, data):
    assert submit(api, make_user().token, data=data, content_type="audio/wav").status_code == 200


def _direct_upload(api, token: str, data: bytes) -> tuple[dict, list[dict]]:
    started = body(api.post("/api/wisp/uploads", json={"file_name": "x.wav", "content_type": "audio/wav",
                                                         "size": len(data)}, token=token))
    r = requests.put(started["parts"][0]["url"], data=data, timeout=10)
    return started, [{"part_number": 1, "etag": r.headers["ETag"]}]


def test_direct_upload_content_is_checked_at_completion(api):
    person = make_user()
    started, parts = _direct_upload(api, person.token, PNG)
    r = api.post(f"/api/wisp/uploads/{started['upload_id']}/complete", json={"parts": parts}, token=person.token)
    assert r.status_code == 415 and "image/png" in body(r)["detail"]
    assert _objects() == []
    started, parts = _direct_upload(api, person.token, WAV)
    r = api.post(f"/api/wisp/uploads/{started['upload_id']}/complete", json={"parts": parts}, token=person.token)
    assert r.status_code == 200


def test_upload_completion_errors_do_not_leak_s3_text(api):
    person = make_user()
    started, _parts = _direct_upload(api, person.token, WAV)
    r = api.post(f"/api/wisp/uploads/{started['upload_id']}/complete",
                 json={"parts": [{"part_number": 1, "etag": '"0123456789abcdef0123456789abcdef"'}]}, token=person.token)
    assert r.status_code == 400
    detail = body(r)["detail"]
    assert "error occurred" not in detail and "InvalidPart" not in detail and "CompleteMultipartUpload" not in detail
    assert "/parts" in detail  # says how to find out what is missing


# ------------------------------------------------------------------------------------------
# A failed job write leaves no object
# ------------------------------------------------------------------------------------------


def test_a_failed_job_write_leaves_no_audio(api, monkeypatch):
    person = make_user()

    def broken(*_a, **_kw):
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(assignment, "place_new_job", broken)
    with pytest.raises(RuntimeError):
        job_service.submit_job(user_id=person.user.id, file_name="a.wav", content_type="audio/wav", data=WAV,
                               settings_id=None)
    assert _objects() == []
    started, parts = _direct_upload(api, person.token, WAV)
    with pytest.raises(RuntimeError):
        from chalicelib.services import uploads

        uploads.complete_upload(person.user.id, started["upload_id"], [(1, parts[0]["etag"])], None)
    assert _objects() == []


# ------------------------------------------------------------------------------------------
# Per-user limits
# ------------------------------------------------------------------------------------------


def test_queued_jobs_per_user_are_limited(api, use_settings):
    use_settings(settings_with("limits", queued_jobs_per_user=2))
    person, other = make_user(), make_user()
    assert submit(api, person.token).status_code == 200
    assert submit(api, person.token).status_code == 200
    r = submit(api, person.token)
    assert r.status_code == 400 and "queued_jobs_per_user" in body(r)["detail"]
    assert len(_objects("audio/")) == 2  # the refused job's audio is gone again
    assert submit(api, other.token).status_code == 200  # per user
    # a job that starts frees its place in the queue
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    runner.audio()
    assert submit(api, person.token).status_code == 200


def test_open_uploads_per_user_are_limited_and_can_be_cancelled(api, use_settings):
    use_settings(settings_with("limits", open_uploads_per_user=2))
    person = make_user()
    new = {"file_name": "a.wav", "content_type": "audio/wav", "size": 10}
    first = body(api.post("/api/wisp/uploads", json=new, token=person.token))
    assert api.post("/api/wisp/uploads", json=new, token=person.token).status_code == 200
    r = api.post("/api/wisp/uploads", json=new, token=person.token)
    assert r.status_code == 400 and "open_uploads_per_user" in body(r)["detail"]
    assert body(api.delete(f"/api/wisp/uploads/{first['upload_id']}", token=person.token)) == "Success"
    assert api.post("/api/wisp/uploads", json=new, token=person.token).status_code == 200
    other = make_user()
    assert api.delete(f"/api/wisp/uploads/{first['upload_id']}", token=other.token).status_code == 400


def test_job_settings_per_user_are_limited(api, use_settings):
    use_settings(settings_with("limits", job_settings_per_user=12))
    person = make_user()
    ids = [body(api.post("/api/jobs/submit_settings", json={}, token=person.token)) for _ in range(11)]
    used = ids[0]
    assert submit(api, person.token, settings_id=used).status_code == 200
    assert api.post("/api/jobs/submit_settings", json={}, token=person.token).status_code == 200  # the 12th
    # at the limit, records no job uses (but the newest few) make room
    assert api.post("/api/jobs/submit_settings", json={}, token=person.token).status_code == 200
    assert submit(api, person.token, settings_id=used).status_code == 200  # the one in use stays


def test_job_settings_limit_is_400_when_all_are_in_use(api, use_settings):
    use_settings(settings_with("limits", job_settings_per_user=2))
    person = make_user()
    for _ in range(2):
        settings_id = body(api.post("/api/jobs/submit_settings", json={}, token=person.token))
        assert submit(api, person.token, settings_id=settings_id).status_code == 200
    r = api.post("/api/jobs/submit_settings", json={}, token=person.token)
    assert r.status_code == 400 and "job_settings_per_user" in body(r)["detail"]


def test_api_token_limit_check(use_settings):
    from chalicelib import errors
    from chalicelib.services import tokens
    from chalicelib.store.users import User

    use_settings(settings_with("limits", api_tokens_per_user=2))
    person = make_user()  # holds one API token already
    user = User.get(person.user.id)
    limits.check_api_tokens(int(user.id))
    tokens.issue_api_token(user, name="second")
    with pytest.raises(errors.BadRequest, match="api_tokens_per_user"):
        limits.check_api_tokens(int(user.id))
    tokens.issue_session(user, name="browser", admin=False)  # sessions do not count
    with pytest.raises(errors.BadRequest):
        limits.check_api_tokens(int(user.id))


def test_openapi_documents_the_rules(api):
    doc = body(api.get("/openapi.json"))
    for path, method in (("/api/jobs/delete", "delete"), ("/api/jobs/abort", "post")):
        schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["maxItems"] == 1000, (path, schema)
    [param] = [p for p in doc["paths"]["/api/jobs/info"]["get"]["parameters"] if p["name"] == "job_ids"]
    assert param["schema"]["maxItems"] == 1000
    submit_op = doc["paths"]["/api/jobs/submit_job"]["post"]
    encoding = submit_op["requestBody"]["content"]["multipart/form-data"]["encoding"]
    assert "audio/*" in encoding["audio_file"]["contentType"] and "video/*" in encoding["audio_file"]["contentType"]
    assert "415" in submit_op["responses"] and "4,500,000 bytes" in submit_op["description"]
    assert "queued_jobs_per_user" in submit_op["description"]
    assert "job_settings_per_user" in doc["paths"]["/api/jobs/submit_settings"]["post"]["description"]
    assert "open_uploads_per_user" in doc["paths"]["/api/wisp/uploads"]["post"]["description"]



def test_api_tokens_per_user_are_limited_at_the_route(api, use_settings):
    use_settings(settings_with("limits", api_tokens_per_user=1))
    person = make_user()  # holds one API token already
    r = api.post("/api/users/get_new_api_token", query={"name": "one too many"}, token=person.token)
    assert r.status_code == 400 and "api_tokens_per_user" in body(r)["detail"]
