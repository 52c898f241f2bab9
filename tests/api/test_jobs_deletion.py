"""Deletion leaves nothing behind (issue 12 §4): a deleted job takes every object with it, a
deleted account every item and object of its user, and the daily sweep catches what a crash left."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from chalicelib import aws, storage
from chalicelib.services import accounts, maintenance
from chalicelib.settings import environment
from chalicelib.store import ALL_MODELS
from chalicelib.store.base import now
from chalicelib.store.users import User
from tests.jobs_support import TRANSCRIPT, WAV, RunnerClient, make_runner, make_user, submit
from tests.support import body

MARK = "Zebra-Lecture-77.wav"  # a file name found nowhere but in this user's data


def _bucket() -> str:
    return environment().bucket


def _objects(prefix: str = "") -> list[str]:
    s3 = aws.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=_bucket(), Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _pending_uploads(prefix: str = "") -> list[str]:
    return [u["Key"] for u in aws.client("s3").list_multipart_uploads(Bucket=_bucket(), Prefix=prefix).get("Uploads", [])]


def _runner(api) -> RunnerClient:
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    return runner


def _leftover_result_upload(api, runner: RunnerClient) -> str:
    """What a runner that crashed after ``result_upload`` leaves: a whole transcript under
    ``results/<job>/`` that was never submitted."""
    slot = body(runner.call("POST", "/api/wisp/runners/result_upload"))
    payload = json.dumps({"transcript": TRANSCRIPT, "error_msg": None}).encode()
    r = requests.post(slot["url"], data=slot["fields"], files={"file": ("result.json", payload)}, timeout=10)
    assert r.status_code in (200, 204), r.text
    return slot["key"]


def _user_items(user_id: int, marks: list[str]) -> list[str]:
    """Every item of every table that belongs to the user or mentions one of ``marks``."""
    client = aws.client("dynamodb")
    found = []
    for model in ALL_MODELS:
        table = model.Meta.table_name
        for page in client.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                text = json.dumps(item)
                owners = {int(v["N"]) for k, v in item.items() if "user_id" in k and "N" in v}
                if table.endswith("-users") and "N" in item.get("id", {}):
                    owners.add(int(item["id"]["N"]))
                if user_id in owners or any(m in text for m in marks):
                    found.append(f"{table}: {text[:200]}")
    return found


def test_deleting_jobs_and_then_the_account_leaves_nothing_of_the_user(api):
    # GIVEN a user with a finished job whose runner also left an unsubmitted result upload, a
    # failed job, an abandoned direct upload with 16 MiB... (here: one part), five empty direct
    # uploads, settings records and event-log entries
    person = make_user()
    runner = _runner(api)
    settings_id = body(api.post("/api/jobs/submit_settings", json={"model": "turbo"}, token=person.token,
                                query={"is_new_default": True}))
    done = body(submit(api, person.token, filename=MARK, settings_id=settings_id))
    runner.call("POST", "/api/wisp/runners/audio_url")
    leftover = _leftover_result_upload(api, runner)
    assert body(runner.result(transcript=TRANSCRIPT)) == "Success"
    failed = body(submit(api, person.token, filename=MARK))
    runner.audio()
    runner.result(error_msg="boom")
    started = body(api.post("/api/wisp/uploads", json={"file_name": MARK, "content_type": "audio/wav",
                                                         "size": len(WAV)}, token=person.token))
    assert requests.put(started["parts"][0]["url"], data=WAV, timeout=10).status_code == 200
    for _ in range(5):
        api.post("/api/wisp/uploads", json={"file_name": MARK, "content_type": "audio/wav", "size": 10},
                 token=person.token)
    assert leftover in _objects() and len(_pending_uploads(storage.upload_prefix(person.user.id))) == 6
    # WHEN the user deletes the jobs, then the account
    assert body(api.delete("/api/jobs/delete", json=[done, failed], token=person.token)) == "Success"
    assert not _objects(storage.result_prefix(done))  # the job's deletion took its result upload
    accounts.delete_user(User.get(person.user.id))
    # THEN no table holds an item of the user, and the bucket holds no object or upload of it
    assert _user_items(int(person.user.id), [MARK, person.user.email]) == []
    assert _objects() == []
    assert _pending_uploads() == []


def test_account_deletion_with_unfinished_work_leaves_nothing(api):
    # GIVEN a user whose jobs are queued and in progress (not deletable through /jobs/delete)
    person = make_user()
    runner = _runner(api)
    submit(api, person.token, filename=MARK)
    runner.call("POST", "/api/wisp/runners/audio_url")
    _leftover_result_upload(api, runner)
    submit(api, person.token, filename=MARK)
    # WHEN the account is deleted
    accounts.delete_user(User.get(person.user.id))
    # THEN nothing of it is left but the runner's note to stop (cleared when it reports back)
    left = [i for i in _user_items(int(person.user.id), [MARK, person.user.email]) if "-runners:" not in i]
    assert left == []
    assert _objects() == [] and _pending_uploads() == []
    assert runner.heartbeat().status_code == 200
    runner.result(error_msg="aborted")
    assert _user_items(int(person.user.id), [MARK, person.user.email]) == []


def test_daily_sweep_removes_what_a_crash_left(api):
    # GIVEN leftovers of crashes: audio and an upload whose jobs were never written, a result
    # upload and transcript files of a job that is gone, a stale multipart upload; and things
    # still in use: a queued job's audio, a fresh unfinished upload
    person = make_user()
    kept_job = body(submit(api, person.token))
    storage.put(storage.audio_key(999_999), WAV, content_type="audio/wav")
    storage.put(storage.upload_prefix(person.user.id) + "crashed", WAV, content_type="audio/wav")
    storage.put(storage.new_result_key(999_998), b"{}", content_type="application/json")
    storage.put(storage.transcript_key(999_998, "as_txt"), b"text", content_type="text/plain")
    fresh = body(api.post("/api/wisp/uploads", json={"file_name": "a.wav", "content_type": "audio/wav",
                                                       "size": 10}, token=person.token))
    # WHEN the daily task runs three days later (the upload is stale by then)
    removed = maintenance.delete_orphaned_audio(now=now() + timedelta(days=3))
    # THEN only the leftovers went
    assert removed == 5, removed
    assert _objects() == [storage.audio_key(kept_job)]
    assert _pending_uploads() == []
    assert fresh["key"].startswith(storage.upload_prefix(person.user.id))


@pytest.fixture
def real_initiation_times(monkeypatch):
    """moto reports every multipart upload as initiated in 2010; S3 says when it was."""
    started: dict[str, datetime] = {}
    create, listing = storage.create_multipart, storage.multipart_uploads

    def create_multipart(key: str, **kw: Any) -> str:
        upload_id = create(key, **kw)
        started[upload_id] = now()
        return upload_id

    def multipart_uploads(prefix: str) -> list[storage.PendingUpload]:
        return [dataclasses.replace(u, initiated=started.get(u.upload_id, u.initiated)) for u in listing(prefix)]

    monkeypatch.setattr(storage, "create_multipart", create_multipart)
    monkeypatch.setattr(storage, "multipart_uploads", multipart_uploads)


def test_daily_sweep_keeps_recent_objects_and_uploads(api, real_initiation_times):
    person = make_user()
    storage.put(storage.audio_key(999_999), WAV, content_type="audio/wav")
    body(api.post("/api/wisp/uploads", json={"file_name": "a.wav", "content_type": "audio/wav", "size": 10},
                  token=person.token))
    assert maintenance.delete_orphaned_audio(now=now()) == 0
    assert len(_pending_uploads()) == 1 and _objects() == [storage.audio_key(999_999)]


def test_the_sweep_aborts_uploads_of_deleted_users_at_once(api, real_initiation_times):
    person = make_user()
    body(api.post("/api/wisp/uploads", json={"file_name": "a.wav", "content_type": "audio/wav", "size": 10},
                  token=person.token))
    User.get(person.user.id).delete()  # a deletion that crashed before it reached the uploads
    assert maintenance.delete_orphaned_audio(now=now()) == 1
    assert _pending_uploads() == []
