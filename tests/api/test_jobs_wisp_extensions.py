"""Wisp extensions (routes/wisp.py): direct uploads, transcript URLs, and the runner extensions."""
from __future__ import annotations

import json

import requests

from chalicelib import aws, storage
from chalicelib.services import jobs as job_service
from chalicelib.services import uploads
from chalicelib.settings import environment
from tests.jobs_support import TRANSCRIPT, WAV, RunnerClient, make_runner, make_user, submit, tiny_wav  # noqa: F401
from tests.support import body


def _upload(api, token, data: bytes, *, content_type="audio/ogg", file_name="Long talk.ogg"):
    r = api.post("/api/wisp/uploads", json={"file_name": file_name, "content_type": content_type, "size": len(data)},
                 token=token)
    assert r.status_code == 200, r.body
    return body(r)


def _put_parts(started, data: bytes, only: set[int] | None = None) -> list[dict]:
    done = []
    for part in started["parts"]:
        n = part["part_number"]
        if only is not None and n not in only:
            continue
        chunk = data[(n - 1) * started["part_size"]:n * started["part_size"]]
        r = requests.put(part["url"], data=chunk, timeout=10)
        assert r.status_code == 200, r.text
        done.append({"part_number": n, "etag": r.headers["ETag"]})
    return done


def test_direct_upload_resumes_and_creates_a_job(api, monkeypatch):
    monkeypatch.setattr(uploads, "MIN_PART_SIZE", 5 * 1024 * 1024)
    person = make_user()
    data = b"OggS\x00\x02" + b"\x00\x01" * (5 * 1024 * 1024 // 2)  # an Ogg page header, then binary
    started = _upload(api, person.token, data)
    assert started["part_size"] == 5 * 1024 * 1024 and [p["part_number"] for p in started["parts"]] == [1, 2]
    assert started["key"].startswith(f"uploads/{person.user.id}/")
    # GIVEN only the first part arrived (the upload was interrupted)
    first = _put_parts(started, data, only={1})
    # WHEN the client asks what is missing
    resumed = body(api.get(f"/api/wisp/uploads/{started['upload_id']}/parts", token=person.token))
    assert [p["part_number"] for p in resumed["uploaded"]] == [1]
    assert [p["part_number"] for p in resumed["parts"]] == [2]
    # THEN it uploads the rest with fresh URLs and completes
    rest = _put_parts(resumed, data)
    settings_id = body(api.post("/api/jobs/submit_settings", json={"model": "turbo"}, token=person.token))
    r = api.post(f"/api/wisp/uploads/{started['upload_id']}/complete", json={"parts": first + rest},
                 query={"job_settings_id": settings_id}, token=person.token)
    assert r.status_code == 200, r.body
    job_id = body(r)
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["file_name"] == "Long talk.ogg" and info["settings"]["model"] == "turbo"
    assert info["step"] == "pending_runner"
    head = aws.client("s3").head_object(Bucket=environment().bucket, Key=started["key"])
    assert head["ServerSideEncryption"] == "AES256" and head["ContentLength"] == len(data)
    # a runner gets the uploaded audio through the stock route
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    assert runner.audio().status_code == 413  # over the inline limit: the stock route names the extension
    url = body(runner.call("POST", "/api/wisp/runners/audio_url"))["url"]
    got = requests.get(url, timeout=10)
    assert got.content == data and got.headers["Content-Type"] == "audio/ogg"
    runner.result(transcript=TRANSCRIPT)
    assert aws.client("s3").list_objects_v2(Bucket=environment().bucket, Prefix="uploads/").get("KeyCount") == 0


def test_direct_upload_errors(api, monkeypatch):
    owner, other = make_user(), make_user()
    r = api.post("/api/wisp/uploads", json={"file_name": "a.txt", "content_type": "text/plain", "size": 3},
                 token=owner.token)
    assert r.status_code == 415
    monkeypatch.setenv(job_service.ENV_MAX_UPLOAD, "100")
    r = api.post("/api/wisp/uploads", json={"file_name": "a.wav", "content_type": "audio/wav", "size": 101},
                 token=owner.token)
    assert r.status_code == 413
    r = api.post("/api/wisp/uploads", json={"file_name": "a.wav", "content_type": "audio/wav"}, token=owner.token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body", "size"]
    started = _upload(api, owner.token, tiny_wav(20), content_type="audio/wav")  # under the 100 bytes set above
    parts = _put_parts(started, tiny_wav(20))
    upload = started["upload_id"]
    # another user cannot see or complete it; garbage ids are 400
    assert api.get(f"/api/wisp/uploads/{upload}/parts", token=other.token).status_code == 400
    assert api.post(f"/api/wisp/uploads/{upload}/complete", json={"parts": parts}, token=other.token).status_code == 400
    assert api.get("/api/wisp/uploads/garbage/parts", token=owner.token).status_code == 400
    # foreign settings: 400, and the upload stays completable
    foreign = body(api.post("/api/jobs/submit_settings", json={}, token=other.token))
    r = api.post(f"/api/wisp/uploads/{upload}/complete", json={"parts": parts}, token=owner.token,
                 query={"job_settings_id": foreign})
    assert r.status_code == 400
    r = api.post(f"/api/wisp/uploads/{upload}/complete", json={"parts": parts}, token=owner.token)
    assert r.status_code == 200
    # completing twice: the upload is gone
    assert api.post(f"/api/wisp/uploads/{upload}/complete", json={"parts": parts}, token=owner.token).status_code == 400


def test_completed_upload_larger_than_allowed_is_deleted(api, monkeypatch):
    person = make_user()
    started = _upload(api, person.token, WAV, content_type="audio/wav")
    parts = _put_parts(started, WAV)
    monkeypatch.setenv(job_service.ENV_MAX_UPLOAD, "10")
    r = api.post(f"/api/wisp/uploads/{started['upload_id']}/complete", json={"parts": parts}, token=person.token)
    assert r.status_code == 413
    assert aws.client("s3").list_objects_v2(Bucket=environment().bucket, Prefix="uploads/").get("KeyCount") == 0


def test_transcript_url_marks_downloaded_and_serves_the_file(api):
    person, other = make_user(), make_user()
    job_id = body(submit(api, person.token, filename="meeting.m4a", content_type="audio/mp4"))
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    assert runner.call("POST", "/api/wisp/runners/result_upload").status_code == 400  # not in process yet
    url = body(runner.call("POST", "/api/wisp/runners/audio_url"))["url"]
    assert requests.get(url, timeout=10).content == WAV
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "runner_in_progress"  # audio_url marks the job in process
    runner.result(transcript=TRANSCRIPT)

    r = api.get(f"/api/wisp/jobs/{job_id}/transcript_url", query={"transcript_type": "as_srt"}, token=other.token)
    assert r.status_code == 400
    r = api.get(f"/api/wisp/jobs/{job_id}/transcript_url", query={"transcript_type": "as_srt"}, token=person.token)
    got = requests.get(body(r)["url"], timeout=10)
    assert got.text == TRANSCRIPT["as_srt"]
    assert 'filename="meeting.srt"' in got.headers.get("Content-Disposition", "")
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "downloaded"
    r = api.get(f"/api/wisp/jobs/{job_id}/transcript_url", query={"transcript_type": "as_json"}, token=person.token)
    assert json.loads(requests.get(body(r)["url"], timeout=10).text) == TRANSCRIPT["as_json"]
    assert api.get("/api/wisp/jobs/abc/transcript_url", query={"transcript_type": "as_srt"},
                   token=person.token).status_code == 422


def test_runner_result_upload_extension(api):
    person = make_user()
    job_id = body(submit(api, person.token))
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    runner.call("POST", "/api/wisp/runners/audio_url")
    slot = body(runner.call("POST", "/api/wisp/runners/result_upload"))
    assert slot["key"].startswith(f"results/{job_id}/") and slot["fields"]["x-amz-server-side-encryption"] == "AES256"
    payload = json.dumps({"transcript": TRANSCRIPT, "error_msg": None}).encode()
    r = requests.post(slot["url"], data=slot["fields"], files={"file": ("result.json", payload)}, timeout=10)
    assert r.status_code in (200, 204), r.text
    # a key outside this job's prefix is refused
    r = runner.call("POST", "/api/wisp/runners/submit_uploaded_result", json={"key": "audio/1"})
    assert r.status_code == 400
    r = runner.call("POST", "/api/wisp/runners/submit_uploaded_result", json={"key": slot["key"]})
    assert body(r) == "Success"
    r = api.get("/api/jobs/download_transcript", query={"job_id": job_id, "transcript_type": "as_vtt"},
                token=person.token)
    assert body(r) == TRANSCRIPT["as_vtt"]
    assert storage.result_prefix(job_id) not in str(
        aws.client("s3").list_objects_v2(Bucket=environment().bucket, Prefix="results/").get("Contents", []))


def test_uploaded_result_must_be_valid(api):
    submit(api, make_user().token)
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    runner.audio()
    slot = body(runner.call("POST", "/api/wisp/runners/result_upload"))
    storage.put(slot["key"], b'{"transcript": null}', content_type="application/json")
    r = runner.call("POST", "/api/wisp/runners/submit_uploaded_result", json={"key": slot["key"]})
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body"]
    missing = slot["key"].rsplit("/", 1)[0] + "/nothing.json"
    assert runner.call("POST", "/api/wisp/runners/submit_uploaded_result", json={"key": missing}).status_code == 400


def test_wait_for_job_returns_when_a_job_arrives(api):
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    r = runner.call("POST", "/api/wisp/runners/wait_for_job", query={"timeout": 0.3})
    assert body(r) == {"abort": False, "job_assigned": False}
    submit(api, make_user().token)
    r = runner.call("POST", "/api/wisp/runners/wait_for_job", query={"timeout": 5})
    assert body(r) == {"abort": False, "job_assigned": True}
    assert runner.call("POST", "/api/wisp/runners/wait_for_job", query={"timeout": 99}).status_code == 422
