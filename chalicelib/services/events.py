"""Reading per-user job events (spec §7).

Events are written by the changes they announce: ``chalicelib.store.lifecycle`` appends them to the
user's log item (``store/events.py``) in the same transaction as the change, and deletions with one
UpdateItem per user. This module only reads the log for the event stream.
"""
from __future__ import annotations

import time

from ..store import events as store
from ..store.events import Entry, Snapshot
from ..store.transact import RETENTION_SECONDS, TRIM_SLACK_SECONDS, trim_log

JOB_CREATED = "job_created"
JOB_UPDATED = "job_updated"
JOB_DELETED = "job_deleted"

__all__ = ["RETENTION_SECONDS", "TRIM_SLACK_SECONDS", "after", "latest_seq", "read", "since", "trim_if_due"]


def read(user_id: int) -> Snapshot:
    """The user's log (one GetItem)."""
    return store.read(user_id)


def after(log: Snapshot, last_seq: int, limit: int = 500) -> list[Entry]:
    """Entries after ``last_seq`` in order, leaving out those past retention (not yet dropped)."""
    stale = int(time.time()) - RETENTION_SECONDS
    start = max(0, last_seq + 1 - log.first_seq)
    return [e for e in log.entries[start:] if e.at > stale][:limit]


def since(user_id: int, last_seq: int, limit: int = 500) -> list[Entry]:
    return after(read(user_id), last_seq, limit)


def latest_seq(user_id: int) -> int:
    """The newest sequence number of the user's log (0 if empty)."""
    return read(user_id).newest_seq


def trim_if_due(user_id: int, log: Snapshot) -> None:
    """Transactional appends cannot trim; readers do, when they see stale entries (rarely)."""
    trim_log(user_id, log)
