"""Transcription jobs (spec §5.1).

One row per job, keyed by its increasing integer id. Runner data is copied onto the job at
assignment, so reading a job never needs the runner row except to check that the runner is still
online. Sparse indexes replace upstream's Redis sets without any Scan:

* ``by-user``  (user_id, id): a user's jobs (count, get, account deletion).
* ``queue``    (queue = "q", id): pending jobs, oldest first; the attribute exists only while the
  job waits for a runner, so the index holds exactly the queue.
* ``by-runner`` (runner_id, id): jobs a runner worked on (invalidate_runner clears their runner_id).
* ``finished`` (finished = "f", finish_timestamp): finished jobs by finish time (retention).
"""
from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from .base import TableMeta, UTCDateTime, now, table

QUEUED = "q"
FINISHED = "f"


class JobsByUser(GlobalSecondaryIndex["Job"]):
    class Meta:
        index_name = "by-user"
        projection = AllProjection()

    user_id = NumberAttribute(hash_key=True)
    id = NumberAttribute(range_key=True)


class JobQueue(GlobalSecondaryIndex["Job"]):
    class Meta:
        index_name = "queue"
        projection = AllProjection()

    queue = UnicodeAttribute(hash_key=True)
    id = NumberAttribute(range_key=True)


class JobsByRunner(GlobalSecondaryIndex["Job"]):
    class Meta:
        index_name = "by-runner"
        projection = KeysOnlyProjection()

    runner_id = NumberAttribute(hash_key=True)
    id = NumberAttribute(range_key=True)


class FinishedJobs(GlobalSecondaryIndex["Job"]):
    class Meta:
        index_name = "finished"
        projection = KeysOnlyProjection()

    finished = UnicodeAttribute(hash_key=True)
    finish_timestamp = UTCDateTime(range_key=True)


class Job(Model):
    class Meta(TableMeta):
        table_name = table("jobs")

    id = NumberAttribute(hash_key=True)
    user_id = NumberAttribute()
    file_name = UnicodeAttribute()
    creation_timestamp = UTCDateTime(default=now)
    job_settings_id = NumberAttribute(null=True)  # None → application defaults
    settings = JSONAttribute(null=True)  # copy of the (immutable) settings record
    email_notification = BooleanAttribute(default=False)
    audio_key = UnicodeAttribute(null=True)  # S3 key; removed once finished or aborting
    queue = UnicodeAttribute(null=True)  # QUEUED while pending
    # the runner holding the job (token hash of its row) and the runner data copied at assignment
    runner_key = UnicodeAttribute(null=True)
    runner_id = NumberAttribute(null=True)
    runner_name = UnicodeAttribute(null=True)
    runner_version = UnicodeAttribute(null=True)
    runner_git_hash = UnicodeAttribute(null=True)
    runner_source_code_url = UnicodeAttribute(null=True)
    aborting = BooleanAttribute(default=False)
    finish_timestamp = UTCDateTime(null=True)
    finished = UnicodeAttribute(null=True)  # FINISHED once finished
    downloaded = BooleanAttribute(null=True)  # None unless succeeded
    error_msg = UnicodeAttribute(null=True)
    has_transcript = BooleanAttribute(default=False)

    by_user = JobsByUser()
    queue_index = JobQueue()
    by_runner = JobsByRunner()
    finished_index = FinishedJobs()


def failed_actions(error_msg: str) -> list:
    """Update actions that finish an unfinished job as failed: out of the queue, audio key gone."""
    return [Job.finish_timestamp.set(now()), Job.finished.set(FINISHED), Job.error_msg.set(error_msg),
            Job.audio_key.remove(), Job.queue.remove()]


def runner_fields() -> list:
    """The job attributes that describe its runner (cleared when a job goes back to the queue)."""
    return [Job.runner_id, Job.runner_name, Job.runner_version, Job.runner_git_hash, Job.runner_source_code_url]


def pending(limit: int) -> list[Job]:
    """The oldest pending jobs (eventually consistent, like every index read)."""
    return list(Job.queue_index.query(QUEUED, limit=limit, scan_index_forward=True))


def of_user(user_id: int) -> list[Job]:
    return list(Job.by_user.query(user_id))


def get_many(job_ids: list[int]) -> list[Job]:
    unique = list(dict.fromkeys(job_ids))
    if not unique:
        return []
    return list(Job.batch_get(unique))


def finished_before(moment) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(j.id) for j in Job.finished_index.query(FINISHED, FinishedJobs.finish_timestamp < moment)]


def ids_by_runner(runner_id: int) -> list[int]:
    return [int(j.id) for j in Job.by_runner.query(runner_id)]
