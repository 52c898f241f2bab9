"""The jobs routes (spec §3.5) through the test client: success paths and documented errors."""
from __future__ import annotations

import json

import pytest

from chalicelib import aws, storage
from chalicelib.services import jobs as job_service
from chalicelib.settings import environment
from chalicelib.services import events
from chalicelib.store.jobs import Job
from tests.jobs_support import TRANSCRIPT, RunnerClient, make_runner, make_user, multipart, submit  # noqa: F401
from tests.support import body, settings_with


def _events(user_id: int) -> list[tuple[str, int]]:
    return [(e.event, e.job_id) for e in events.read(user_id).entries]


def _objects(prefix: str = "") -> list[str]:
    found = aws.client("s3").list_objects_v2(Bucket=environment().bucket, Prefix=prefix)
    return [o["Key"] for o in found.get("Contents", [])]


def _finish(api, job_count: int = 1, *, transcript=TRANSCRIPT, error_msg=None) -> RunnerClient:
    """A runner that takes and finishes the next ``job_count`` jobs."""
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    assert runner.register().status_code == 200
    for _ in range(job_count):
        assert body(runner.heartbeat())["job_assigned"] is True
        assert runner.audio().status_code == 200
        assert body(runner.result(transcript=transcript, error_msg=error_msg)) == "Success"
    runner.unregister()
    return runner


# --------------------------------------------------------------------------------------------
# submit_job
# --------------------------------------------------------------------------------------------


def test_submit_job_stores_encrypted_audio_and_queues_the_job(api):
    person = make_user()
    r = submit(api, person.token, data=b"\x00\x01audio", filename="Lecture 1.mp3", content_type="audio/mpeg")
    assert r.status_code == 200
    job_id = body(r)
    assert isinstance(job_id, int)
    head = aws.client("s3").head_object(Bucket=environment().bucket, Key=storage.audio_key(job_id))
    assert head["ServerSideEncryption"] == "AES256" and head["ContentType"] == "audio/mpeg"
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "pending_runner" and info["file_name"] == "Lecture 1.mp3" and info["progress"] == 0
    assert info["runner_id"] is None and info["downloaded"] is None and info["abort"] is False
    assert ("job_created", job_id) in _events(person.user.id)
    second = body(submit(api, person.token))
    assert second > job_id  # increasing ids


def test_submit_job_uses_given_or_default_settings(api):
    person = make_user()
    first = body(submit(api, person.token))
    api.post("/api/jobs/submit_settings", json={"model": "turbo"}, token=person.token, query={"is_new_default": True})
    second = body(submit(api, person.token))
    explicit = body(api.post("/api/jobs/submit_settings", json={"model": "small"}, token=person.token))
    third = body(submit(api, person.token, settings_id=explicit))
    infos = {i["id"]: i for i in body(api.get("/api/jobs/info", query={"job_ids": [first, second, third]},
                                              token=person.token))}
    assert infos[first]["settings"]["model"] == "large"  # no default then: application defaults
    assert infos[second]["settings"]["model"] == "turbo"
    assert infos[third]["settings"]["model"] == "small"


def test_submit_job_errors(api):
    person = make_user()
    # missing part → FastAPI's 422
    raw, ctype = multipart(field="something_else")
    r = api.post("/api/jobs/submit_job", body=raw, headers={"Content-Type": ctype}, token=person.token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body", "audio_file"]
    r = api.post("/api/jobs/submit_job", body=b"", token=person.token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body", "audio_file"]
    # a part without a filename: never a 500 (upstream bug §12.11)
    raw, ctype = multipart(filename=None)
    r = api.post("/api/jobs/submit_job", body=raw, headers={"Content-Type": ctype}, token=person.token)
    assert r.status_code in (400, 422)
    # not audio/video
    for bad in ("text/plain", "application/octet-stream", "audio"):
        assert submit(api, person.token, content_type=bad, data=b"not audio at all").status_code == 415, bad
    raw, ctype = multipart(b"just some text", content_type=None)
    r = api.post("/api/jobs/submit_job", body=raw, headers={"Content-Type": ctype}, token=person.token)
    assert r.status_code == 415
    assert submit(api, person.token, content_type="video/mp4").status_code == 200
    # unknown settings id
    assert submit(api, person.token, settings_id=987654).status_code == 400
    # bad query
    raw, ctype = multipart()
    r = api.post("/api/jobs/submit_job", body=raw, headers={"Content-Type": ctype}, token=person.token,
                 query={"job_settings_id": "x"})
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["query", "job_settings_id"]
    # a malformed multipart body is a 400, not a 500
    r = api.post("/api/jobs/submit_job", body=b"garbage", headers={"Content-Type": "multipart/form-data"},
                 token=person.token)
    assert r.status_code == 400


def _wav() -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x00\x00" * 1600)
    return out.getvalue()


# first bytes of real files of each kind, as filetype reads them
SNIFFED = {
    "talk.wav": (_wav(), "audio/x-wav"),
    "talk.mp3": (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64, "audio/mpeg"),
    "talk.ogg": (b"OggS\x00\x02" + b"\x00" * 60, "audio/ogg"),
    "talk.flac": (b"fLaC\x00\x00\x00\x22" + b"\x00" * 60, "audio/x-flac"),
    "talk.mp4": (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 40, "video/mp4"),
    "talk.webm": (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
                  b"\x42\x82\x84webm" + b"\x00" * 40, "video/webm"),
}


@pytest.mark.parametrize("part_type", ["application/octet-stream", None])
@pytest.mark.parametrize("filename", sorted(SNIFFED))
def test_submit_job_unlabelled_part_is_judged_by_its_content(api, filename, part_type):
    # GIVEN a part labelled as curl -F labels files it does not know (or not labelled at all)
    person = make_user()
    data, media_type = SNIFFED[filename]
    raw, ctype = multipart(data, filename=filename, content_type=part_type)
    # WHEN it is submitted
    r = api.post("/api/jobs/submit_job", body=raw, headers={"Content-Type": ctype}, token=person.token)
    # THEN the file's first bytes decide, and the stored audio carries the type found
    assert r.status_code == 200, r.body
    head = aws.client("s3").head_object(Bucket=environment().bucket, Key=storage.audio_key(body(r)))
    assert head["ContentType"] == media_type


def test_submit_job_unlabelled_part_that_is_not_media_is_415(api):
    person = make_user()
    for data, found in ((b"%PDF-1.7\n" + b"x" * 100, "application/pdf"), (b"plain words", "is text"),
                        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png")):
        raw, ctype = multipart(data, filename="talk.wav", content_type="application/octet-stream")
        r = api.post("/api/jobs/submit_job", body=raw, headers={"Content-Type": ctype}, token=person.token)
        assert r.status_code == 415 and found in body(r)["detail"], body(r)
    # a declared non-media type is not second-guessed, even when the bytes are audio (upstream: 415)
    r = submit(api, person.token, data=_wav(), content_type="text/plain")
    assert r.status_code == 415 and "text/plain" in body(r)["detail"]
    assert _objects("audio/") == []


def test_submit_job_over_the_lambda_limit_names_the_upload_extension(api, monkeypatch):
    monkeypatch.setattr(job_service, "MAX_INLINE_BYTES", 1000)
    r = submit(api, make_user().token, data=b"x" * 2000)
    assert r.status_code == 413
    assert "/api/wisp/uploads" in body(r)["detail"]


# --------------------------------------------------------------------------------------------
# count / get / info
# --------------------------------------------------------------------------------------------


def test_count_get_and_filters(api):
    person = make_user()
    ids = [body(submit(api, person.token, filename=name)) for name in ("b.wav", "a.wav", "c.wav")]
    _finish(api, 2)  # ids[0] and ids[1] succeed
    api.get("/api/jobs/download_transcript", query={"job_id": ids[0], "transcript_type": "as_txt"},
            token=person.token)

    def count(finished, downloaded):
        return body(api.get("/api/jobs/count", token=person.token,
                            query={"exclude_finished": finished, "exclude_downloaded": downloaded}))

    assert count(False, False) == 3
    assert count(True, False) == 1  # only unfinished
    assert count(True, True) == 1
    assert count(False, True) == 2  # all but downloaded

    def get(start, end, key="creation_time", desc=False, finished=False, downloaded=False):
        return body(api.get("/api/jobs/get", token=person.token, query={
            "start_index": start, "end_index": end, "sort_key": key, "descending": desc,
            "exclude_finished": finished, "exclude_downloaded": downloaded}))

    assert get(0, 9) == ids
    assert get(0, 1) == ids[:2]  # inclusive end
    assert get(1, 1) == [ids[1]]
    assert get(2, 1) == []
    assert get(0, 9, desc=True) == ids[::-1]
    assert get(0, 9, key="filename") == [ids[1], ids[0], ids[2]]
    assert get(0, 9, key="filename", desc=True) == [ids[2], ids[0], ids[1]]
    assert get(0, 9, downloaded=True) == ids[1:]
    assert get(0, 9, finished=True) == [ids[2]]
    # other users see nothing of it
    other = make_user()
    assert body(api.get("/api/jobs/count", token=other.token,
                        query={"exclude_finished": False, "exclude_downloaded": False})) == 0


def test_get_and_count_validate_their_query(api):
    person = make_user()
    r = api.get("/api/jobs/count", token=person.token, query={"exclude_finished": "maybe"})
    locs = [d["loc"] for d in body(r)["detail"]]
    assert r.status_code == 422 and ["query", "exclude_finished"] in locs and ["query", "exclude_downloaded"] in locs
    r = api.get("/api/jobs/get", token=person.token, query={
        "start_index": 0, "end_index": 1, "sort_key": "size", "descending": False, "exclude_finished": False,
        "exclude_downloaded": False})
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["query", "sort_key"]
    r = api.get("/api/jobs/info", token=person.token, query={"job_ids": ["1", "x"]})
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["query", "job_ids", 1]
    assert api.get("/api/jobs/info", token=person.token).status_code == 422


def test_info_omits_foreign_and_unknown_jobs(api):
    owner, other = make_user(), make_user()
    mine = body(submit(api, owner.token))
    # a job without a settings record (no default) must still be private (upstream bug §12.1)
    assert body(api.get("/api/jobs/info", query={"job_ids": [mine, 999999]}, token=other.token)) == []
    got = body(api.get("/api/jobs/info", query={"job_ids": [mine, mine, 999999]}, token=owner.token))
    assert [i["id"] for i in got] == [mine]


def test_info_shows_runner_while_assigned_and_after_finishing(api):
    person = make_user()
    job_id = body(submit(api, person.token))
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register(name="gpu-1")
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "runner_assigned" and info["runner_name"] == "gpu-1" and info["runner_id"] == runner.id
    runner.audio()
    runner.heartbeat(42.5)
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "runner_in_progress" and info["progress"] == 42.5
    runner.result(error_msg="CUDA out of memory")
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "failed" and info["error_msg"] == "CUDA out of memory" and info["progress"] == 0
    assert info["runner_name"] == "gpu-1" and info["finish_timestamp"] is not None and info["downloaded"] is None


# --------------------------------------------------------------------------------------------
# abort
# --------------------------------------------------------------------------------------------


def test_abort_pending_job_fails_it_at_once(api):
    person = make_user()
    job_id = body(submit(api, person.token))
    assert body(api.post("/api/jobs/abort", json=[job_id, 424242], token=person.token)) == "Success"
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "failed" and info["error_msg"] and info["finish_timestamp"]
    assert storage.audio_key(job_id) not in _objects("audio/")
    assert ("job_updated", job_id) in _events(person.user.id)
    # a runner registering now gets nothing
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    assert body(runner.heartbeat())["job_assigned"] is False
    # finished jobs cannot be aborted again
    assert api.post("/api/jobs/abort", json=[job_id], token=person.token).status_code == 400


def test_abort_assigned_but_not_started_unassigns_and_fails(api):
    person = make_user()
    job_id = body(submit(api, person.token))
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    assert body(api.post("/api/jobs/abort", json=[job_id], token=person.token)) == "Success"
    assert body(runner.heartbeat()) == {"abort": False, "job_assigned": False}
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "failed" and info["runner_id"] is None
    assert runner.job_info().status_code == 400


def test_abort_in_progress_job_goes_through_the_runner(api):
    person = make_user()
    job_id = body(submit(api, person.token))
    other = body(submit(api, person.token))
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    runner.audio()
    assert body(api.post("/api/jobs/abort", json=[job_id], token=person.token)) == "Success"
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "aborting" and info["abort"] is True
    # aborting jobs cannot be aborted again; the whole request changes nothing then
    assert api.post("/api/jobs/abort", json=[other, job_id], token=person.token).status_code == 400
    [pending] = body(api.get("/api/jobs/info", query={"job_ids": other}, token=person.token))
    assert pending["step"] == "pending_runner"
    assert body(runner.heartbeat(10)) == {"abort": True, "job_assigned": False}
    assert runner.job_info().status_code == 405
    assert body(runner.result(error_msg="job was aborted")) == "Success"
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "failed" and info["error_msg"] == "job was aborted"
    # the runner moves on to the other job
    assert body(runner.heartbeat())["job_assigned"] is True


def test_abort_needs_an_array_and_ignores_foreign_jobs(api):
    owner, other = make_user(), make_user()
    job_id = body(submit(api, owner.token))
    r = api.post("/api/jobs/abort", json={"ids": [job_id]}, token=owner.token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body"]
    assert body(api.post("/api/jobs/abort", json=[job_id], token=other.token)) == "Success"
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=owner.token))
    assert info["step"] == "pending_runner"


# --------------------------------------------------------------------------------------------
# delete
# --------------------------------------------------------------------------------------------


def test_delete_finished_jobs_with_their_files_and_unused_settings(api):
    person = make_user()
    settings_id = body(api.post("/api/jobs/submit_settings", json={"model": "turbo"}, token=person.token))
    default_id = body(api.post("/api/jobs/submit_settings", json={}, token=person.token,
                               query={"is_new_default": True}))
    done = body(submit(api, person.token, settings_id=settings_id))
    with_default = body(submit(api, person.token))
    running = body(submit(api, person.token))
    _finish(api, 2)
    assert set(_objects(f"transcripts/{done}/")) == set(storage.transcript_keys(done))

    r = api.delete("/api/jobs/delete", json=[done, running], token=person.token)
    assert r.status_code == 400 and str(running) in body(r)["detail"]
    assert Job.get(done).id == done  # nothing deleted

    assert body(api.delete("/api/jobs/delete", json=[done, with_default, 555555], token=person.token)) == "Success"
    assert body(api.get("/api/jobs/info", query={"job_ids": [done, with_default]}, token=person.token)) == []
    assert _objects(f"transcripts/{done}/") == []
    events = _events(person.user.id)
    for job_id in (done, with_default, 555555):  # one job_deleted per id in the request
        assert ("job_deleted", job_id) in events
    from chalicelib.store import job_settings as settings_store
    assert settings_store.find(person.user.id, settings_id) is None  # unreferenced: gone
    assert settings_store.find(person.user.id, default_id) is not None  # the default stays


def test_delete_ignores_foreign_jobs(api):
    owner, other = make_user(), make_user()
    job_id = body(submit(api, owner.token))
    api.post("/api/jobs/abort", json=[job_id], token=owner.token)
    assert body(api.delete("/api/jobs/delete", json=[job_id], token=other.token)) == "Success"
    assert len(body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=owner.token))) == 1


# --------------------------------------------------------------------------------------------
# download_transcript
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["as_txt", "as_srt", "as_tsv", "as_vtt", "as_json"])
def test_download_transcript_is_a_json_string(api, kind):
    person = make_user()
    job_id = body(submit(api, person.token))
    _finish(api)
    r = api.get("/api/jobs/download_transcript", query={"job_id": job_id, "transcript_type": kind},
                token=person.token)
    assert r.status_code == 200
    text = body(r)
    assert isinstance(text, str)
    if kind == "as_json":
        assert json.loads(text) == TRANSCRIPT["as_json"]  # double-encoded, like upstream
    else:
        assert text == TRANSCRIPT[kind]
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=person.token))
    assert info["step"] == "downloaded" and info["downloaded"] is True and info["progress"] == 100


def test_download_transcript_errors(api, monkeypatch):
    owner, other = make_user(), make_user()
    pending = body(submit(api, owner.token))
    failed = body(submit(api, owner.token))
    api.post("/api/jobs/abort", json=[failed], token=owner.token)
    done = body(submit(api, owner.token))
    _finish(api)  # takes `pending` (oldest first)
    query = {"transcript_type": "as_txt"}
    for job_id, token in ((999999, owner.token), (failed, owner.token), (done, owner.token), (pending, other.token)):
        r = api.get("/api/jobs/download_transcript", query={**query, "job_id": job_id}, token=token)
        assert r.status_code == 400, (job_id, r.body)
    # the other user's attempt did not mark it downloaded
    [info] = body(api.get("/api/jobs/info", query={"job_ids": pending}, token=owner.token))
    assert info["step"] == "success"
    r = api.get("/api/jobs/download_transcript", query={"job_id": pending, "transcript_type": "as_pdf"},
                token=owner.token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["query", "transcript_type"]
    # too big for a Lambda response: 413 naming the extension, not marked downloaded
    monkeypatch.setattr(job_service, "MAX_INLINE_RESPONSE_BYTES", 10)
    r = api.get("/api/jobs/download_transcript", query={**query, "job_id": pending}, token=owner.token)
    assert r.status_code == 413 and "transcript_url" in body(r)["detail"]
    r = api.get("/api/jobs/download_transcript", query={**query, "job_id": pending}, token=other.token)
    assert r.status_code == 400
    [info] = body(api.get("/api/jobs/info", query={"job_ids": pending}, token=owner.token))
    assert info["step"] == "success"


def test_downloads_send_one_update_event(api):
    person = make_user()
    job_id = body(submit(api, person.token))
    _finish(api)
    before = _events(person.user.id).count(("job_updated", job_id))
    for _ in range(2):
        api.get("/api/jobs/download_transcript", query={"job_id": job_id, "transcript_type": "as_txt"},
                token=person.token)
    assert _events(person.user.id).count(("job_updated", job_id)) == before + 1


# --------------------------------------------------------------------------------------------
# account deletion hook and retention
# --------------------------------------------------------------------------------------------


def test_delete_all_of_user_removes_jobs_files_and_settings(api):
    person, other = make_user(), make_user()
    api.post("/api/jobs/submit_settings", json={}, token=person.token, query={"is_new_default": True})
    done = body(submit(api, person.token))
    _finish(api)
    running = body(submit(api, person.token))
    queued = body(submit(api, person.token))
    keep = body(submit(api, other.token))
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()  # takes `running`
    runner.audio()
    job_service.delete_all_of_user(person.user.id)
    assert [j.id for j in Job.batch_get([done, running, queued, keep])] == [keep]
    assert not [k for k in _objects() if k.startswith((f"transcripts/{done}/", f"audio/{running}", f"audio/{queued}"))]
    from chalicelib.store import job_settings as settings_store
    assert settings_store.all_of_user(person.user.id) == []
    # the runner is told to stop; its report then just frees it, and it takes the next job
    assert body(runner.heartbeat()) == {"abort": True, "job_assigned": False}
    assert body(runner.result(error_msg="job was aborted")) == "Success"
    assert body(runner.heartbeat())["job_assigned"] is True
    assert body(runner.job_info())["id"] == keep


def test_retention_deletes_old_finished_jobs(api, use_settings):
    from datetime import timedelta

    from chalicelib.store.base import now

    person = make_user()
    old, recent = body(submit(api, person.token)), body(submit(api, person.token))
    unfinished = body(submit(api, person.token))
    _finish(api, 2)
    Job(old).update(actions=[Job.finish_timestamp.set(now() - timedelta(days=31))])
    assert job_service.apply_retention() == 0  # retention off by default
    use_settings(settings_with("cleanup", finished_job_retention_in_days=30))
    assert job_service.apply_retention() == 1
    assert sorted(j.id for j in Job.batch_get([old, recent, unfinished])) == [recent, unfinished]
    assert _objects(f"transcripts/{old}/") == [] and _objects(f"transcripts/{recent}/") != []
