"""No job loops, no result lands twice, a job's observed state only moves forward (issue 10 §2)."""
from __future__ import annotations


import pytest

from chalicelib import errors, storage
from chalicelib.schemas.jobs import CountQuery
from chalicelib.schemas.runners import RunnerRegisterRequest
from chalicelib.services import jobs as job_service
from chalicelib.services import leases, protocol, tokens
from chalicelib.store import jobs as job_store
from chalicelib.store import runners as runner_store
from tests.jobs_support import RUNNER_INFO, TRANSCRIPT, RunnerClient, make_runner, make_user, submit  # noqa: F401
from tests.factories import LeaseClock
from tests.support import body


def _runner(api, name: str = "r") -> RunnerClient:
    _rid, token = make_runner()
    client = RunnerClient(api, token)
    assert client.register(name=name).status_code == 200
    return client


def _info(api, person, job_id: int) -> dict:
    return body(api.get("/api/jobs/info", query={"job_ids": [job_id]}, token=person.token))[0]



# ------------------------------------------------------------------------------------------
# Poison jobs
# ------------------------------------------------------------------------------------------


def test_a_job_whose_audio_is_missing_fails_at_once_and_frees_the_runner(api):
    person = make_user()
    runner = _runner(api)
    lost = body(submit(api, person.token))
    storage.delete([storage.audio_key(lost)])  # GIVEN the audio is gone
    waiting = body(submit(api, person.token))
    assert body(runner.job_info())["id"] == lost
    # WHEN the runner asks for it
    r = runner.audio()
    # THEN it is told why (4xx), the job failed with a message that says so, and the runner moves on
    assert r.status_code == 400 and "missing" in body(r)["detail"]
    failed = _info(api, person, lost)
    assert failed["step"] == "failed" and failed["error_msg"] == protocol.audio_missing_message(lost)
    assert body(runner.heartbeat())["job_assigned"] is True
    assert body(runner.job_info())["id"] == waiting


def test_a_job_handed_out_too_often_fails_with_a_message(api):
    person = make_user()
    crashy = body(submit(api, person.token))
    for attempt in range(1, leases.MAX_HANDOUTS + 1):
        runner = _runner(api, f"attempt-{attempt}")
        assert body(runner.job_info())["id"] == crashy
        assert runner.audio().status_code == 200
        assert runner.unregister().status_code == 200  # the runner "crashes": the job goes back (or fails)
        step = _info(api, person, crashy)["step"]
        assert step == ("pending_runner" if attempt < leases.MAX_HANDOUTS else "failed"), attempt
    failed = _info(api, person, crashy)
    assert failed["error_msg"] == leases.gave_up_message(leases.MAX_HANDOUTS)
    assert job_store.get(crashy).audio_key is None and job_store.get(crashy).queue is None


def test_a_job_put_back_goes_behind_the_jobs_that_waited_meanwhile(api):
    person = make_user()
    first = _runner(api, "first")
    crashy = body(submit(api, person.token))
    assert body(first.job_info())["id"] == crashy
    later = [body(submit(api, person.token)) for _ in range(2)]  # these wait while it runs
    assert first.unregister().status_code == 200  # it crashes: the job goes back
    assert [j.id for j in job_store.pending(10)] == [*later, crashy]
    second = _runner(api, "second")
    assert body(second.job_info())["id"] == later[0]  # the queue is not blocked by the job that failed
    newest = body(submit(api, person.token))
    assert [j.id for j in job_store.pending(10)] == [later[1], crashy, newest]  # but it keeps its place


# ------------------------------------------------------------------------------------------
# Late results
# ------------------------------------------------------------------------------------------


def _principal(client: RunnerClient) -> leases.RunnerPrincipal:
    token_hash = tokens.hash_secret(client.token)
    principal = leases.read(token_hash, tokens.hash_secret(client.session or ""))
    assert principal is not None
    return principal


def test_a_late_result_is_refused_and_never_touches_the_stored_transcript(api, monkeypatch):
    clock = LeaseClock(monkeypatch)
    person = make_user()
    slow = _runner(api, "slow")
    job_id = body(submit(api, person.token))
    assert slow.audio().status_code == 200
    stale = _principal(slow)  # GIVEN the slow runner authenticated its result call...
    # ... then its lease ran out, the sweeper put the job back, and another runner finished it
    clock.advance(leases.LEASE_SECONDS + 1)
    from chalicelib import schedules

    fast = _runner(api, "fast")
    schedules.sweep_runners()
    assert body(fast.job_info())["id"] == job_id
    assert fast.audio().status_code == 200
    assert body(fast.result(transcript=TRANSCRIPT)) == "Success"
    # WHEN the slow runner's result arrives
    late = {**TRANSCRIPT, "as_txt": "A different, late transcript.\n"}
    with pytest.raises((errors.BadRequest, errors.Forbidden)):
        protocol.submit_result(stale, error_msg=None, transcript=late)
    # THEN the job keeps the first result, and its download works
    info = _info(api, person, job_id)
    assert info["step"] == "success" and info["runner_name"] == "fast"
    r = api.get("/api/jobs/download_transcript", query={"job_id": job_id, "transcript_type": "as_txt"},
                token=person.token)
    assert r.status_code == 200 and body(r) == TRANSCRIPT["as_txt"]
    assert [k for k in _keys(f"results/{job_id}/")] == []  # the refused result was not left behind


def test_a_second_result_for_a_finished_job_is_a_400(api):
    person = make_user()
    runner = _runner(api)
    job_id = body(submit(api, person.token))
    assert runner.audio().status_code == 200
    principal = _principal(runner)
    assert body(runner.result(transcript=TRANSCRIPT)) == "Success"
    with pytest.raises(errors.BadRequest):
        protocol.submit_result(principal, error_msg=None, transcript={**TRANSCRIPT, "as_txt": "again\n"})
    assert storage.get(storage.transcript_key(job_id, "as_txt")).data.decode() == TRANSCRIPT["as_txt"]


def test_a_crash_after_finishing_loses_no_transcript(api, monkeypatch):
    person = make_user()
    runner = _runner(api)
    job_id = body(submit(api, person.token))
    assert runner.audio().status_code == 200
    # GIVEN the function stops right after the job was marked done, before the files were written
    from chalicelib.services import results

    monkeypatch.setattr(results, "publish", lambda *_a: (_ for _ in ()).throw(RuntimeError("Lambda stopped")))
    assert runner.result(transcript=TRANSCRIPT).status_code == 500
    monkeypatch.undo()
    assert _info(api, person, job_id)["step"] == "success"
    # WHEN the owner downloads, THEN the transcript is written from the stored result
    r = api.get("/api/jobs/download_transcript", query={"job_id": job_id, "transcript_type": "as_srt"},
                token=person.token)
    assert r.status_code == 200 and body(r) == TRANSCRIPT["as_srt"]


def _keys(prefix: str) -> list[str]:
    from chalicelib import aws
    from chalicelib.settings import environment

    found = aws.client("s3").list_objects_v2(Bucket=environment().bucket, Prefix=prefix)
    return [o["Key"] for o in found.get("Contents", [])]


# ------------------------------------------------------------------------------------------
# No flicker
# ------------------------------------------------------------------------------------------


def test_a_finishing_job_never_reads_as_pending_while_another_waits(api, monkeypatch):
    person = make_user()
    runner = _runner(api)
    job_id = body(submit(api, person.token))
    waiting = body(submit(api, person.token))  # another job waits in the queue
    assert runner.audio().status_code == 200
    assert _info(api, person, job_id)["step"] == "runner_in_progress"
    # GIVEN the result lands between the read of the job rows and the read of the runner rows
    real_get_many = runner_store.get_many

    def result_lands_first(keys):
        monkeypatch.setattr(runner_store, "get_many", real_get_many)
        assert body(runner.result(transcript=TRANSCRIPT)) == "Success"  # the runner takes the waiting job
        return real_get_many(keys)

    monkeypatch.setattr(runner_store, "get_many", result_lands_first)
    # WHEN the owner looks, THEN the job reads as finished, never as pending with no runner and 0 %
    info = _info(api, person, job_id)
    assert info["step"] == "success" and info["progress"] == 100.0 and info["runner_name"] == "r"
    assert _info(api, person, waiting)["step"] == "runner_assigned"


def test_observed_steps_only_move_forward_through_a_whole_job(api):
    person = make_user()
    runner = _runner(api)
    job_id = body(submit(api, person.token))
    order = ["pending_runner", "runner_assigned", "runner_in_progress", "success", "downloaded"]
    seen = [_info(api, person, job_id)["step"]]
    assert runner.audio().status_code == 200
    seen.append(_info(api, person, job_id)["step"])
    assert body(runner.result(transcript=TRANSCRIPT)) == "Success"
    seen.append(_info(api, person, job_id)["step"])
    api.get("/api/jobs/download_transcript", query={"job_id": job_id, "transcript_type": "as_txt"}, token=person.token)
    seen.append(_info(api, person, job_id)["step"])
    ranks = [order.index(step) for step in seen]
    assert ranks == sorted(ranks) and seen[-1] == "downloaded"


def test_register_request_model_is_the_one_the_runner_sends():
    assert set(RunnerRegisterRequest.model_fields) == set(RUNNER_INFO)


def test_queue_positions_keep_fifo_for_new_jobs(api):
    person = make_user()
    ids = [body(submit(api, person.token)) for _ in range(3)]
    assert [j.id for j in job_store.pending(10)] == ids
    assert [j.queue_pos for j in job_store.pending(10)] == ids
    assert job_service.count(person.user.id, CountQuery(exclude_finished=True, exclude_downloaded=False)) == 3
