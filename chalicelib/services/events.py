"""Publishing and reading per-user job events (spec §7).

Every publish is one UpdateItem on the user's log item (``store/events.py``). Inside ``batch()``
(every API request runs in one, see ``routes/_http.py``) publishes are collected and written when
the batch ends, one UpdateItem per user, in the order they were made: a submit that assigns the
job at once writes ``job_created`` and ``job_updated`` together.
"""
from __future__ import annotations

import contextlib
import contextvars
import itertools
import time
from collections.abc import Iterator

from ..store import events as store
from ..store.events import Entry, Snapshot

RETENTION_SECONDS = 15 * 60  # long enough for any client to reconnect and replay
TRIM_SLACK_SECONDS = 5 * 60  # old entries are dropped once the oldest is this much past retention
MAX_ENTRIES = 2000  # and when there are more than this many (~40 KB); a few running jobs make ~100

JOB_CREATED = "job_created"
JOB_UPDATED = "job_updated"
JOB_DELETED = "job_deleted"

_pending: contextvars.ContextVar[list[tuple[int, str, int]] | None] = contextvars.ContextVar("wisp_events",
                                                                                              default=None)


def publish(user_id: int, event: str, job_id: int) -> None:
    """Append an event to the user's log (at the end of the current batch, if one is open)."""
    publish_many(user_id, event, [job_id])


def publish_many(user_id: int, event: str, job_ids: list[int]) -> None:
    pending = _pending.get()
    if pending is not None:
        pending.extend((int(user_id), event, int(job_id)) for job_id in job_ids)
    elif job_ids:
        _write(int(user_id), [(event, int(job_id)) for job_id in job_ids])


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Collect the publishes made inside and write them at the end (also when it raises)."""
    if _pending.get() is not None:
        yield  # already inside a batch: that one writes
        return
    pending: list[tuple[int, str, int]] = []
    reset = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(reset)
        by_user: dict[int, list[tuple[str, int]]] = {}
        for user_id, event, job_id in pending:
            by_user.setdefault(user_id, []).append((event, job_id))
        for user_id, found in by_user.items():
            _write(user_id, found)


def _write(user_id: int, found: list[tuple[str, int]]) -> None:
    """One UpdateItem; now and then a second one that drops entries past retention (amortised)."""
    moment = int(time.time())
    log = store.append(user_id, [store.encode(event, job_id, moment) for event, job_id in found])
    entries = log.entries
    stale = moment - RETENTION_SECONDS
    if entries and (entries[0].at < stale - TRIM_SLACK_SECONDS or len(entries) > MAX_ENTRIES):
        drop = len(list(itertools.takewhile(lambda e: e.at < stale, entries)))
        store.drop_oldest(user_id, log, max(drop, len(entries) - MAX_ENTRIES * 3 // 4))


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
