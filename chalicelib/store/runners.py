"""Runners (spec §5.1, §6.2): the token record and, while registered, its online state.

The row is keyed by the hash of the runner token, so authenticating a runner call and refreshing
its lease is one conditional UpdateItem. The online state lives on the same row (upstream keeps it
in Redis) with an explicit ``expires_at`` compared on every read: DynamoDB TTL is lazy and would
not do. The job a runner holds is copied onto the row at assignment (id, owner, settings, audio
key), so the runner calls never read the job row.

Indexes: ``by-id`` (admin routes address runners by id) and the sparse ``online`` index
(online = "o", expires_at): idle runners for assignment and expired ones for the sweeper. The
admin's list of all runners (``scan_all``) scans the table: see there why.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from .base import TableMeta, UTCDateTime, now, table

ONLINE = "o"


class RunnersById(GlobalSecondaryIndex["Runner"]):
    class Meta:
        index_name = "by-id"
        projection = KeysOnlyProjection()

    id = NumberAttribute(hash_key=True)


class OnlineRunners(GlobalSecondaryIndex["Runner"]):
    class Meta:
        index_name = "online"
        projection = AllProjection()

    online = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute(range_key=True)


class Runner(Model):
    class Meta(TableMeta):
        table_name = table("runners")

    token_hash = UnicodeAttribute(hash_key=True)
    id = NumberAttribute()
    created_at = UTCDateTime(default=now)
    # online state, present only while registered
    online = UnicodeAttribute(null=True)  # ONLINE while registered
    session_hash = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # epoch seconds; online only while in the future
    name = UnicodeAttribute(null=True)
    version = UnicodeAttribute(null=True)
    git_hash = UnicodeAttribute(null=True)
    source_code_url = UnicodeAttribute(null=True)
    priority = NumberAttribute(null=True)
    # the job it holds (copied at assignment)
    job_id = NumberAttribute(null=True)
    job_user_id = NumberAttribute(null=True)
    job_settings = JSONAttribute(null=True)
    job_audio_key = UnicodeAttribute(null=True)
    job_email_notification = BooleanAttribute(null=True)
    job_file_name = UnicodeAttribute(null=True)
    job_handouts = NumberAttribute(null=True)  # the job's hand-out count, this hand-out included
    in_process = BooleanAttribute(null=True)  # fetched the audio
    abort = BooleanAttribute(null=True)  # the owner asked to abort the job
    progress = NumberAttribute(null=True)
    queue_generation = NumberAttribute(null=True)  # queue generation when it got the job, if known

    by_id = RunnersById()
    online_index = OnlineRunners()


@dataclass(frozen=True)
class RunnerRecord:
    """A runner row as the services see it: plain values, no storage types."""

    token_hash: str
    id: int
    created_at: datetime | None
    online: str | None
    session_hash: str | None
    expires_at: float | None
    name: str | None
    version: str | None
    git_hash: str | None
    source_code_url: str | None
    priority: int | None
    job_id: int | None
    job_user_id: int | None
    job_settings: dict[str, Any] | None
    job_audio_key: str | None
    job_email_notification: bool | None
    job_file_name: str | None
    job_handouts: int | None
    in_process: bool | None
    abort: bool | None
    progress: float | None
    queue_generation: int | None

    def live(self, moment: float) -> bool:
        """Registered, with a lease that ends after ``moment``."""
        return self.online == ONLINE and self.expires_at is not None and self.expires_at > moment

    def without_job(self) -> "RunnerRecord":
        """The row as it is once the runner let go of its job (``job_fields`` removed)."""
        import dataclasses

        cleared: dict[str, Any] = {f.attr_name: None for f in job_fields()}
        return dataclasses.replace(self, **cleared)


_INTS = {"id", "priority", "job_id", "job_user_id", "job_handouts", "queue_generation"}


def record(row: Runner) -> RunnerRecord:
    values: dict[str, Any] = {}
    for f in fields(RunnerRecord):
        value = getattr(row, f.name, None)
        if value is not None:
            if f.name in _INTS:
                value = int(value)
            elif f.name in ("expires_at", "progress"):
                value = float(value)
        values[f.name] = value
    return RunnerRecord(**values)


def job_fields() -> list:
    """Attributes describing the held job, removed when the runner lets go of it."""
    return [Runner.job_id, Runner.job_user_id, Runner.job_settings, Runner.job_audio_key,
            Runner.job_email_notification, Runner.job_file_name, Runner.job_handouts, Runner.in_process,
            Runner.abort, Runner.progress, Runner.queue_generation]


def online_fields() -> list:
    return [Runner.online, Runner.session_hash, Runner.expires_at, Runner.name, Runner.version,
            Runner.git_hash, Runner.source_code_url, Runner.priority]


def get(token_hash: str) -> RunnerRecord | None:
    try:
        return record(Runner.get(token_hash, consistent_read=True))
    except DoesNotExist:
        return None


def by_id(runner_id: int) -> RunnerRecord | None:
    for hit in Runner.by_id.query(runner_id, limit=1):
        return get(hit.token_hash)
    return None


MAX_LISTED = 1000  # runners the admin list reads at most (Wisp deployments have a handful)

# what the admin list shows; a held job's settings and audio key stay unread
_LISTED = ["token_hash", "id", "created_at", "online", "expires_at", "name", "version", "git_hash",
           "source_code_url", "priority", "job_id", "in_process", "progress"]


def scan_all(limit: int = MAX_LISTED) -> list[RunnerRecord]:
    """Every runner row (online or not), at most ``limit``, in id order; strongly consistent.

    A Scan, for the admin's runner list only: the table holds one small row per runner token (a
    deployment has a handful, never thousands), so one Scan page of ~1 MB reads them all for a few
    read units. The alternatives cost more: ``by-id`` is KEYS_ONLY (a Scan of it still needs a
    BatchGetItem per 100 ids), and the sparse ``online`` index misses the offline runners the admin
    also wants to see. Not for request paths that users or runners trigger.
    """
    rows = Runner.scan(consistent_read=True, limit=limit, attributes_to_get=_LISTED)
    return sorted((record(r) for r in rows), key=lambda r: r.id)


def online_after(moment: float) -> list[RunnerRecord]:
    """Registered runners whose lease ends after ``moment``."""
    return [record(r) for r in Runner.online_index.query(ONLINE, OnlineRunners.expires_at > moment)]


def idle_after(moment: float) -> list[RunnerRecord]:
    """Idle registered runners whose lease ends after ``moment``."""
    return [record(r) for r in Runner.online_index.query(ONLINE, OnlineRunners.expires_at > moment,
                                                           filter_condition=Runner.job_id.does_not_exist())]


def expired_before(moment: float) -> list[RunnerRecord]:
    return [record(r) for r in Runner.online_index.query(ONLINE, OnlineRunners.expires_at <= moment)]


def get_many(token_hashes: list[str]) -> dict[str, RunnerRecord]:
    unique = list(dict.fromkeys(token_hashes))
    if not unique:
        return {}
    return {r.token_hash: record(r) for r in Runner.batch_get(unique, consistent_read=True)}


def get_with_queue_generation(token_hash: str) -> tuple[RunnerRecord | None, int]:
    """The runner row and the job counter's queue generation, in one strongly consistent BatchGetItem."""
    from .base import get_together
    from .counters import JOB, Counter

    row, counter = get_together((Runner, token_hash), (Counter, JOB), consistent=True)
    generation = counter.generation_or_zero if isinstance(counter, Counter) else 0
    return (record(row) if isinstance(row, Runner) else None), generation
