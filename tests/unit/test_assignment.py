"""Atomic assignment (spec §6.3): stale reads never hand a job to two runners or two jobs to a runner."""
from __future__ import annotations

import dataclasses

from chalicelib.schemas.runners import RunnerRegisterRequest
from chalicelib.services import admin, assignment, job_settings, jobs, leases, protocol, tokens
from chalicelib.store import lifecycle
from chalicelib.store.lifecycle import Outcome
from chalicelib.store import jobs as job_store
from chalicelib.store import runners as runner_store
from chalicelib.store.jobs import Job
from tests.jobs_support import RUNNER_INFO, WAV, make_user  # noqa: F401


def _online_runner(priority: int = 100) -> runner_store.RunnerRecord:
    _rid, secret = admin.create_runner()
    row = runner_store.get(tokens.hash_secret(secret))
    protocol.register(leases.RunnerPrincipal(row), RunnerRegisterRequest(**{**RUNNER_INFO, "priority": priority}))
    return runner_store.get(tokens.hash_secret(secret))


def _queued_job(user_id: int) -> job_store.JobRecord:
    job_id = jobs.submit_job(user_id=user_id, file_name="a.wav", content_type="audio/wav", data=WAV,
                             settings_id=None)
    return job_store.get(job_id)


def test_stale_job_or_runner_reads_cannot_double_assign():
    person = make_user()
    first, second = _online_runner(), _online_runner()
    job = _queued_job(person.user.id)  # assigned to one of them right away
    holder = first if runner_store.get(first.token_hash).job_id == job.id else second
    other = second if holder is first else first
    assert runner_store.get(holder.token_hash).job_id == job.id
    # GIVEN stale copies that still show the job queued and the holder idle
    # WHEN a second attempt works from them
    stale_job = dataclasses.replace(job, queue=job_store.QUEUED, runner_key=None)
    assert assignment.try_assign(stale_job, other) is Outcome.JOB_CHANGED  # the job is not queued any more
    Job(job.id + 1000, user_id=person.user.id, file_name="b.wav", queue=job_store.QUEUED, queue_pos=job.id + 1000,
        audio_key="k").save()
    another = job_store.get(job.id + 1000)
    assert assignment.try_assign(another, holder) is Outcome.RUNNER_CHANGED  # the holder already has a job
    # THEN nothing changed for the first job, and the other runner got the new one instead
    assert assignment.assign_pending() == [another.id]
    assert runner_store.get(other.token_hash).job_id == another.id
    assert Job.get(job.id).runner_key == holder.token_hash


def test_fifo_across_users_and_priority_picks_the_runner():
    alice, bob = make_user(), make_user()
    ids = [_queued_job(u.user.id).id for u in (alice, bob, alice)]
    slow = _online_runner(priority=1)  # gets the oldest job: it is the only one idle
    assert runner_store.get(slow.token_hash).job_id == ids[0]
    fast = _online_runner(priority=500)
    assert runner_store.get(fast.token_hash).job_id == ids[1]
    assert Job.get(ids[2]).queue == job_store.QUEUED


def test_aborting_job_left_in_queue_is_failed_by_the_assignment_loop():
    person = make_user()
    job = _queued_job(person.user.id)
    Job(job.id).update(actions=[Job.aborting.set(True)])
    _online_runner()
    job = Job.get(job.id)
    assert job.error_msg == lifecycle.ABORTED and job.queue is None and job.finish_timestamp is not None


def test_settings_snapshot_travels_with_the_job():
    person = make_user()
    from chalicelib.schemas.jobs import JobSettingsRequest

    settings_id = job_settings.submit(person.user.id, JobSettingsRequest(model="turbo"), is_new_default=False)
    job_id = jobs.submit_job(user_id=person.user.id, file_name="a.wav", content_type="audio/wav", data=WAV,
                             settings_id=settings_id)
    runner = _online_runner()
    info = protocol.job_info(leases.RunnerPrincipal(runner_store.get(runner.token_hash)))
    assert info.id == job_id and info.settings.model.value == "turbo"
