"""Publishing and reading per-user job events (spec §7).

Two ways to publish onto the user's log item (``store/events.py``):

* ``commit(build, *events)``: the events ride in the write transaction that makes the change
  they announce (assignment, result, abort, download, ...). Change and event happen together or
  not at all, and the event costs no request of its own.
* ``publish``: one UpdateItem for changes that are not a transaction. Inside ``batch()`` (every API
  request runs in one, see ``routes/_http.py``) publishes are collected and written when the
  batch ends, one UpdateItem per user, in the order they were made.

A log is trimmed (entries past retention, or more than ``MAX_ENTRIES``) by plain publishes, by
the SSE reader when it sees stale entries, and by ``commit`` when its transaction was refused for
lack of room.
"""
from __future__ import annotations

import contextlib
import contextvars
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError

from ..errors import ServiceUnavailable
from ..store import events as store
from ..store.base import CONFLICT_ATTEMPTS, conflict_pause, transact_write
from ..store.events import Entry, Snapshot

if TYPE_CHECKING:
    from pynamodb.transactions import TransactWrite

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


Holding = tuple[int, int, str]  # (user id, job id, token hash of the runner, or QUEUE)
QUEUE = store.QUEUE


def commit(build: Callable[["TransactWrite"], None], *found: tuple[int, str, int],
           held: Iterable[Holding] = (), let_go: Iterable[Holding] = ()) -> None:
    """Run the write transaction that ``build`` fills, with the events ``found`` ((user id, event,
    job id), in order) appended to their users' logs in the same transaction. ``held`` / ``let_go``
    record that a runner (or ``QUEUE``) now holds / no longer holds a job: the log's ``running``
    set lets stream readers report progress without progress ever being written to the log, and
    ``running`` and ``waiting`` keep a user's streams live while work is in flight.

    The log items come after the caller's items, so the caller reads the cancellation reasons of
    its own items by their usual index; a ``TransactWriteError`` propagates as from the plain
    transaction. Two refusals are handled here: a full log (trim it, retry once), and a conflict
    with another transaction on one of the items (a user's log is shared by all their jobs: two
    results at the same moment meet there), retried after a short random pause."""
    by_user: dict[int, list[tuple[str, int]]] = {}
    for user_id, event, job_id in found:
        by_user.setdefault(int(user_id), []).append((event, int(job_id)))
    holds: dict[int, tuple[set[tuple[int, str]], set[tuple[int, str]]]] = {}
    for index, pairs in enumerate((held, let_go)):
        for user_id, job_id, token_hash in pairs:
            by_user.setdefault(int(user_id), [])
            holds.setdefault(int(user_id), (set(), set()))[index].add((int(job_id), token_hash))
    trimmed = False
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        moment = int(time.time())
        try:
            with transact_write() as tx:
                build(tx)
                for user_id, items in by_user.items():
                    adds, removes = holds.get(user_id, (set(), set()))
                    store.append_in(tx, user_id, [store.encode(e, j, moment) for e, j in items], cap=MAX_ENTRIES,
                                    held=frozenset(adds), let_go=frozenset(removes))
            return
        except TransactWriteError as exc:
            codes = [getattr(r, "code", None) for r in (exc.cancellation_reasons or [])]
            failed = [code for code in codes if code not in (None, "None")]
            if failed and all(code == "TransactionConflict" for code in failed):
                if attempt == CONFLICT_ATTEMPTS:
                    raise ServiceUnavailable() from exc  # 503: nothing was written, the caller may retry
                time.sleep(conflict_pause(attempt))
                continue
            mine, logs = codes[:len(codes) - len(by_user)], codes[len(codes) - len(by_user):]
            full = [uid for uid, code in zip(by_user, logs) if code == "ConditionalCheckFailed"]
            if trimmed or not full or any(code not in (None, "None") for code in mine):
                raise
            trimmed = True
            for user_id in full:
                log = store.read(user_id, consistent=True)
                trim_if_due(user_id, log, force_room=len(by_user[user_id]))


def _write(user_id: int, found: list[tuple[str, int]]) -> None:
    """One UpdateItem; now and then a second one that drops entries past retention (amortised)."""
    moment = int(time.time())
    log = store.append(user_id, [store.encode(event, job_id, moment) for event, job_id in found])
    trim_if_due(user_id, log)


def trim_if_due(user_id: int, log: Snapshot, *, force_room: int = 0) -> None:
    """Drop entries past retention once the oldest is ``TRIM_SLACK_SECONDS`` past it, and keep the
    log well under ``MAX_ENTRIES`` (``force_room``: make room for that many now)."""
    entries = log.entries
    stale = int(time.time()) - RETENTION_SECONDS
    crowded = len(entries) + force_room > MAX_ENTRIES
    if entries and (entries[0].at < stale - TRIM_SLACK_SECONDS or crowded):
        drop = len(list(itertools.takewhile(lambda e: e.at < stale, entries)))
        if crowded:
            drop = max(drop, len(entries) - MAX_ENTRIES * 3 // 4)
        store.drop_oldest(user_id, log, drop)


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
