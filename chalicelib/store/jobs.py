"""Transcription jobs (spec §5.1).

One row per job, keyed by its increasing integer id. Runner data is copied onto the job at
assignment, so reading a job never needs the runner row except to check that the runner is still
online. Sparse indexes replace upstream's Redis sets without any Scan:

* ``by-user``  (user_id, id): a user's jobs (count, get, account deletion).
* ``queue``    (queue = "q", queue_pos): pending jobs in hand-out order; the attribute exists only
  while the job waits for a runner, so the index holds exactly the queue. A new job's position is
  its id; a job put back after a hand-out without a result goes behind the jobs queued so far.
* ``by-runner`` (runner_id, id): jobs a runner worked on (invalidate_runner clears their runner_id).
* ``finished`` (finished = "f", finish_timestamp): finished jobs by finish time (retention).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

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
    queue_pos = NumberAttribute(range_key=True)


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
    queue_pos = NumberAttribute(null=True)  # its place in the queue (see the module doc)
    handouts = NumberAttribute(default=0)  # how often it was given to a runner
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
    result_key = UnicodeAttribute(null=True)  # S3 key of the submitted result the transcripts come from

    by_user = JobsByUser()
    queue_index = JobQueue()
    by_runner = JobsByRunner()
    finished_index = FinishedJobs()


@dataclass(frozen=True)
class JobRecord:
    """A job as the services see it: plain values, no storage types (``chalicelib.store.lifecycle``
    makes every change)."""

    id: int
    user_id: int
    file_name: str
    creation_timestamp: datetime
    job_settings_id: int | None
    settings: dict[str, Any] | None
    email_notification: bool
    audio_key: str | None
    queue: str | None
    queue_pos: float | None
    handouts: int
    runner_key: str | None
    runner_id: int | None
    runner_name: str | None
    runner_version: str | None
    runner_git_hash: str | None
    runner_source_code_url: str | None
    aborting: bool
    finish_timestamp: datetime | None
    finished: str | None
    downloaded: bool | None
    error_msg: str | None
    has_transcript: bool
    result_key: str | None

    @property
    def is_queued(self) -> bool:
        return self.queue == QUEUED


_INTS = {"id", "user_id", "job_settings_id", "runner_id"}


def record(row: Job) -> JobRecord:
    values: dict[str, Any] = {}
    for f in fields(JobRecord):
        value = getattr(row, f.name, None)
        if value is not None and f.name in _INTS:
            value = int(value)
        values[f.name] = value
    values["handouts"] = int(values["handouts"] or 0)
    values["aborting"] = bool(values["aborting"])
    values["email_notification"] = bool(values["email_notification"])
    values["has_transcript"] = bool(values["has_transcript"])
    return JobRecord(**values)


def pending(limit: int) -> list[JobRecord]:
    """The first pending jobs in queue order (eventually consistent, like every index read)."""
    return [record(j) for j in Job.queue_index.query(QUEUED, limit=limit, scan_index_forward=True)]


def queued_count() -> int:
    """Jobs in the queue: a ``Select=COUNT`` Query of the sparse index (paged), so the cost
    follows the queue length, not the table size (never a Scan)."""
    return int(Job.queue_index.count(QUEUED))


def get(job_id: int) -> JobRecord | None:
    """One job, strongly consistent; None if it does not exist."""
    try:
        return record(Job.get(job_id, consistent_read=True))
    except Job.DoesNotExist:
        return None


def of_user(user_id: int) -> list[JobRecord]:
    return [record(j) for j in Job.by_user.query(user_id)]


def get_many(job_ids: list[int], *, consistent: bool = False) -> list[JobRecord]:
    unique = list(dict.fromkeys(job_ids))
    if not unique:
        return []
    return [record(j) for j in Job.batch_get(unique, consistent_read=consistent)]


def finished_before(moment: datetime) -> list[int]:
    return [int(j.id) for j in Job.finished_index.query(FINISHED, FinishedJobs.finish_timestamp < moment)]


def ids_by_runner(runner_id: int) -> list[int]:
    return [int(j.id) for j in Job.by_runner.query(runner_id)]
