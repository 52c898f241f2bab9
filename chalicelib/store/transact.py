"""Write transactions whose items have names, and which carry the job event log along.

Every change of a job's state is one DynamoDB transaction (``chalicelib.store.lifecycle`` builds
them). The events the change causes, and the log's record of who holds which job, ride in the same
transaction: a ``Tx`` collects the job and runner items under names ("job", "runner", ...) and the
log bookkeeping per user, and ``run`` writes it all at once. When DynamoDB cancels it, ``run``
raises ``Cancelled`` with the *names* of the items whose condition failed, so no caller ever reads
cancellation reasons by position.

Two refusals are handled here: a user's log with no room left (trimmed, then tried once more) and a
conflict with another transaction on one of the items (a user's log is shared by all their jobs:
two results at the same moment meet there), tried again after a short random pause.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from ..errors import ServiceUnavailable
from ..settings import get_settings
from . import events as log_store
from .base import CONFLICT_ATTEMPTS, conflict_pause, transact_write

RETENTION_SECONDS = 15 * 60  # long enough for any client to reconnect and replay
TRIM_SLACK_SECONDS = 5 * 60  # old entries are dropped once the oldest is this much past retention
MAX_ENTRIES = 2000  # and when there are more than this many (~40 KB); a few running jobs make ~100

QUEUE = log_store.QUEUE  # the "holder" of a job that waits in the queue


class QueueFull(Exception):
    """A new job would make more of its owner's jobs wait in the queue than ``limit`` allows."""

    def __init__(self, user_id: int, limit: int) -> None:
        super().__init__(f"user {user_id}: {limit} jobs queued")
        self.user_id = user_id
        self.limit = limit


class Cancelled(Exception):
    """DynamoDB cancelled the transaction; ``failed`` names the items whose condition did not hold."""

    def __init__(self, failed: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(failed)) or "cancelled")
        self.failed = failed


@dataclass
class _UserLog:
    events: list[tuple[str, int]] = field(default_factory=list)
    held: set[tuple[int, str]] = field(default_factory=set)
    let_go: set[tuple[int, str]] = field(default_factory=set)

    @property
    def queues_new_job(self) -> bool:
        """A job created into the queue (not one put back: a requeue must never be refused)."""
        created = {j for e, j in self.events if e == log_store.CREATED}
        return any(holder == QUEUE and job_id in created for job_id, holder in self.held)


@dataclass
class Tx:
    """The items of one write transaction, by name, and the event-log changes that go with them."""

    items: list[tuple[str, str, Model, dict[str, Any]]] = field(default_factory=list)
    logs: dict[int, _UserLog] = field(default_factory=dict)

    def update(self, name: str, item: Model, actions: list[Any], condition: Any = None) -> None:
        self.items.append((name, "update", item, {"actions": actions, "condition": condition}))

    def save(self, name: str, item: Model, condition: Any = None) -> None:
        self.items.append((name, "save", item, {"condition": condition}))

    def event(self, user_id: int, event: str, job_id: int) -> None:
        """Append ``event`` about ``job_id`` to the user's log (in order)."""
        self._log(user_id).events.append((event, int(job_id)))

    def hold(self, user_id: int, job_id: int, holder: str) -> None:
        """Record that ``holder`` (a runner's token hash, or ``QUEUE``) now holds the job."""
        self._log(user_id).held.add((int(job_id), holder))

    def let_go(self, user_id: int, job_id: int, holder: str) -> None:
        """Record that ``holder`` no longer holds the job."""
        self._log(user_id).let_go.add((int(job_id), holder))

    def _log(self, user_id: int) -> _UserLog:
        return self.logs.setdefault(int(user_id), _UserLog())


def run(tx: Tx) -> None:
    """Write ``tx`` as one transaction; ``Cancelled`` (with the failed items' names) if a condition
    did not hold, ``ServiceUnavailable`` (503, nothing written) if conflicts persist."""
    trimmed = False
    max_waiting = get_settings().limits.queued_jobs_per_user
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        names = [name for name, *_ in tx.items] + [f"log:{user_id}" for user_id in tx.logs]
        moment = int(time.time())
        try:
            with transact_write() as write:
                for _name, kind, item, kwargs in tx.items:
                    getattr(write, kind)(item, **kwargs)
                for user_id, changes in tx.logs.items():
                    log_store.append_in(write, user_id, [log_store.encode(e, j, moment) for e, j in changes.events],
                                        cap=MAX_ENTRIES, held=frozenset(changes.held),
                                        let_go=frozenset(changes.let_go),
                                        max_waiting=max_waiting if changes.queues_new_job else None)
            return
        except TransactWriteError as exc:
            codes = [getattr(r, "code", None) for r in (exc.cancellation_reasons or [])]
            failed = {names[i]: code for i, code in enumerate(codes) if code not in (None, "None") and i < len(names)}
            if not codes:
                raise
            if failed and all(code == "TransactionConflict" for code in failed.values()):
                if attempt == CONFLICT_ATTEMPTS:
                    raise ServiceUnavailable() from exc
                time.sleep(conflict_pause(attempt))
                continue
            full = [int(name.split(":", 1)[1]) for name, code in failed.items()
                    if name.startswith("log:") and code == "ConditionalCheckFailed"]
            mine = {name for name in failed if not name.startswith("log:")}
            if mine or not full:
                raise Cancelled(frozenset(failed)) from None
            seen = {user_id: log_store.read(user_id, consistent=True) for user_id in full}
            for user_id, log in seen.items():
                if tx.logs[user_id].queues_new_job and len(log.waiting) >= max_waiting:
                    raise QueueFull(user_id, max_waiting) from None
            if trimmed:
                raise Cancelled(frozenset(failed)) from None
            trimmed = True
            for user_id, log in seen.items():
                trim_log(user_id, log, force_room=len(tx.logs[user_id].events))
    raise ServiceUnavailable()


PUBLISH_CHUNK = MAX_ENTRIES // 4  # entries one publishing UpdateItem appends at most


def publish(by_user: dict[int, list[tuple[str, int]]]) -> None:
    """Events that change no job row (deletions): one UpdateItem per user (per ``PUBLISH_CHUNK``
    events), then a trim when due.

    Each append is conditional on the log's room (``MAX_ENTRIES``), and a full log is trimmed
    before the next try, so the item stays far below DynamoDB's 400 KB however many events one
    request brings (a deletion of 20,000 jobs once wrote an item no later write could update)."""
    moment = int(time.time())
    for user_id, found in by_user.items():
        encoded = [log_store.encode(event, job_id, moment) for event, job_id in found]
        for start in range(0, len(encoded), PUBLISH_CHUNK):
            _append_with_room(user_id, encoded[start:start + PUBLISH_CHUNK])


def _append_with_room(user_id: int, encoded: list[str]) -> None:
    for _attempt in range(CONFLICT_ATTEMPTS):
        try:
            log = log_store.append(user_id, encoded, cap=MAX_ENTRIES)
        except log_store.LogFull:
            trim_log(user_id, log_store.read(user_id, consistent=True), force_room=len(encoded))
            continue
        trim_log(user_id, log)
        return
    raise ServiceUnavailable()


def trim_log(user_id: int, log: log_store.Snapshot, *, force_room: int = 0) -> None:
    """Drop entries past retention once the oldest is ``TRIM_SLACK_SECONDS`` past it, and keep the
    log well under ``MAX_ENTRIES`` (``force_room``: make room for that many now)."""
    entries = log.entries
    stale = int(time.time()) - RETENTION_SECONDS
    crowded = len(entries) + force_room > MAX_ENTRIES
    if entries and (entries[0].at < stale - TRIM_SLACK_SECONDS or crowded):
        drop = len(list(itertools.takewhile(lambda e: e.at < stale, entries)))
        if crowded:
            drop = max(drop, len(entries) - MAX_ENTRIES * 3 // 4)
        log_store.drop_oldest(user_id, log, drop)
