"""Per-user job event log behind /api/jobs/events (spec §7): one item per user.

The item holds the user's recent events, oldest first, and the sequence number of the first one:
entry ``i`` has the sequence number ``first_seq + i`` (its SSE ``id:``), so a client that
reconnects with ``Last-Event-ID`` gets every later entry. Appending events is one UpdateItem
(``list_append``); dropping old entries from the front is one conditional UpdateItem that moves
``first_seq`` by as many. Each write keeps the numbering consistent on its own, so a reader needs
one GetItem and sees a consistent log. The item lives as long as the account (sequence numbers
must not restart); account deletion removes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import (
    ListAttribute, NumberAttribute, NumberSetAttribute, UnicodeAttribute, UnicodeSetAttribute,
)
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from .base import TableMeta, table

if TYPE_CHECKING:
    from pynamodb.transactions import TransactWrite

# entries are short strings "<epoch seconds> <code> <job id>" (a few bytes: the item's size is
# what every append and read is billed by)
CREATED = "job_created"
_CODES = {CREATED: "c", "job_updated": "u", "job_deleted": "d"}
_EVENTS = {code: event for event, code in _CODES.items()}


class EventLog(Model):
    class Meta(TableMeta):
        table_name = table("event-log")

    user_id = NumberAttribute(hash_key=True)
    first_seq = NumberAttribute(default=1)  # sequence number of entries[0]
    entries = ListAttribute(of=UnicodeAttribute, default=list)
    # "<job id> <runner token hash>" for each of the user's jobs a runner holds: kept by the same
    # transactions that hand jobs out and take them back, so a reader finds the runner rows whose
    # progress it reports (progress itself is never written here)
    running = UnicodeSetAttribute(null=True)
    # ids of the user's jobs waiting in the queue (kept by the same transactions): a stream stays
    # live while the user has work in flight, e.g. a job waiting for a GPU to start
    waiting = NumberSetAttribute(null=True)
    last_at = NumberAttribute(null=True)  # epoch seconds of the newest event (kept when entries are trimmed)


@dataclass(frozen=True)
class Entry:
    seq: int
    event: str  # job_created | job_updated | job_deleted
    job_id: int
    at: int  # epoch seconds


@dataclass(frozen=True)
class Snapshot:
    """The log as one read saw it: entries with their sequence numbers, oldest first."""

    first_seq: int
    entries: list[Entry]
    running: dict[int, str] = field(default_factory=dict)  # job id → token hash of its runner
    waiting: frozenset[int] = frozenset()  # ids of jobs in the queue
    last_at: int = 0  # epoch seconds of the newest event, 0 if none

    @property
    def newest_seq(self) -> int:
        """The sequence number of the newest event (0 for a user without events)."""
        return self.first_seq + len(self.entries) - 1


def encode(event: str, job_id: int, at: int) -> str:
    return f"{at} {_CODES[event]} {job_id}"


def _snapshot(log: EventLog) -> Snapshot:
    first = int(log.first_seq or 1)
    found = []
    for i, raw in enumerate(log.entries or []):
        at, code, job_id = str(raw).split(" ")
        found.append(Entry(first + i, _EVENTS[code], int(job_id), int(at)))
    running: dict[int, str] = {}
    for member in log.running or ():
        held_job, _, token_hash = str(member).partition(" ")
        running[int(held_job)] = token_hash
    return Snapshot(first, found, running, frozenset(int(j) for j in log.waiting or ()), int(log.last_at or 0))


def holding(job_id: int, token_hash: str) -> str:
    """The ``running`` member saying that runner ``token_hash`` holds job ``job_id``."""
    return f"{int(job_id)} {token_hash}"


QUEUE = ""  # the "runner" of a job that waits in the queue (``append_in``'s ``held``/``let_go``)


class LogFull(Exception):
    """The log has no room for the entries (``append``'s ``cap``): trim it first."""


def _room_for(count: int, cap: int) -> Any:
    return (EventLog.entries.does_not_exist()) | (size(EventLog.entries) <= cap - count)


def append(user_id: int, encoded: list[str], *, cap: int) -> Snapshot:
    """Append entries (one UpdateItem) on condition that the log then holds at most ``cap``
    entries (``LogFull`` otherwise: an item never grows past DynamoDB's 400 KB, whatever one
    request brings); returns the log right after, whose last entries are ours."""
    log = EventLog(user_id)
    try:
        log.update(actions=[EventLog.entries.set((EventLog.entries | []).append(encoded)),
                            EventLog.first_seq.set(EventLog.first_seq | 1), EventLog.last_at.set(_newest(encoded))],
                   condition=_room_for(len(encoded), cap))
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            raise LogFull(user_id) from None
        raise
    return _snapshot(log)


def delete(user_id: int) -> None:
    """Remove the user's log (account deletion: user ids are never given out again, so its
    sequence numbers never restart for anyone)."""
    EventLog(user_id).delete()


def _newest(encoded: list[str]) -> int:
    return max((int(e.split(" ", 1)[0]) for e in encoded), default=0)


def append_in(tx: "TransactWrite", user_id: int, encoded: list[str], *, cap: int,
              held: frozenset[tuple[int, str]] = frozenset(),
              let_go: frozenset[tuple[int, str]] = frozenset(), max_waiting: int | None = None) -> None:
    """Append entries as part of the write transaction ``tx``, on condition that the log then
    holds at most ``cap`` entries (a cancelled transaction tells the caller to trim first) and,
    with ``max_waiting``, at most that many of the user's jobs wait in the queue.

    ``held`` / ``let_go``: (job id, runner token hash) pairs to add to / remove from ``running``;
    a pair whose runner is ``QUEUE`` adds to / removes from ``waiting`` instead."""
    room = _room_for(len(encoded), cap)
    queued = {int(j) for j, r in held if r == QUEUE}
    if max_waiting is not None and queued:
        room = room & (EventLog.waiting.does_not_exist() | (size(EventLog.waiting) <= max_waiting - len(queued)))
    actions: list[Action] = [EventLog.entries.set((EventLog.entries | []).append(encoded)),
                             EventLog.first_seq.set(EventLog.first_seq | 1)]
    if encoded:
        actions.append(EventLog.last_at.set(_newest(encoded)))
    runs = {holding(j, r) for j, r in held if r != QUEUE}
    stops = {holding(j, r) for j, r in let_go if r != QUEUE} - runs
    queues = queued
    dequeues = {int(j) for j, r in let_go if r == QUEUE} - queues
    for attribute, add, remove in ((EventLog.running, runs, stops), (EventLog.waiting, queues, dequeues)):
        if add and remove:  # DynamoDB refuses two actions on one path; no change of state needs both
            raise ValueError(f"cannot add to and remove from {attribute.attr_name} in one write")
        if add:
            actions.append(attribute.add(add))
        if remove:
            actions.append(attribute.delete(remove))
    tx.update(EventLog(user_id), condition=room, actions=actions)


def drop_oldest(user_id: int, seen: Snapshot, count: int) -> None:
    """Remove the first ``count`` entries of the log ``seen`` (one conditional UpdateItem); does
    nothing if the log changed since (the next append tries again)."""
    kept = [encode(e.event, e.job_id, e.at) for e in seen.entries[count:]]  # ``running`` is left as it is
    try:
        EventLog(user_id).update(
            actions=[EventLog.entries.set(kept),  # type: ignore[arg-type]  # a list of str is what it stores
                     EventLog.first_seq.set(seen.first_seq + count)],
            condition=(EventLog.first_seq == seen.first_seq) & (size(EventLog.entries) == len(seen.entries)),
        )
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise


def read(user_id: int, *, consistent: bool = False) -> Snapshot:
    """The user's log (one GetItem, eventually consistent unless asked); empty with first_seq 1
    if none yet."""
    try:
        return _snapshot(EventLog.get(user_id, consistent_read=consistent))
    except DoesNotExist:
        return Snapshot(1, [])
