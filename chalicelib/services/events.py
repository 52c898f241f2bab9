"""Publishing and reading per-user job events (spec §7)."""
from __future__ import annotations

import time

from ..store.counters import next_id
from ..store.events import JobEvent

RETENTION_SECONDS = 15 * 60  # long enough for any client to reconnect and replay

JOB_CREATED = "job_created"
JOB_UPDATED = "job_updated"
JOB_DELETED = "job_deleted"


def publish(user_id: int, event: str, job_id: int) -> int:
    """Append an event to the user's log; returns its sequence number (the SSE id)."""
    seq = next_id(f"events#{user_id}")
    JobEvent(user_id, seq, event=event, job_id=job_id,
             expires_at_epoch=int(time.time()) + RETENTION_SECONDS).save()
    return seq


def publish_many(user_id: int, event: str, job_ids: list[int]) -> None:
    for job_id in job_ids:
        publish(user_id, event, job_id)


def since(user_id: int, last_seq: int, limit: int = 500) -> list[JobEvent]:
    """Events after ``last_seq`` in order (expired rows that TTL has not removed yet are skipped)."""
    moment = int(time.time())
    found = JobEvent.query(user_id, JobEvent.seq > last_seq, limit=limit)
    return [e for e in found if e.expires_at_epoch > moment]


def latest_seq(user_id: int) -> int:
    """The newest sequence number of the user's log (0 if empty)."""
    for event in JobEvent.query(user_id, scan_index_forward=False, limit=1):
        return int(event.seq)
    return 0
