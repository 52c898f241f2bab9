"""Short-lived Server-Sent Events responses for /api/jobs/events (spec §7, §13).

Lambda behind API Gateway cannot keep a response open, so every response is a finished batch:
the events after the client's position, an ``id:`` with the new position and a ``retry:`` that
says when to come back. EventSource clients treat the end of a response as a dropped connection,
reconnect after ``retry`` milliseconds and send the last ``id`` as ``Last-Event-ID``, so no event
is lost as long as the client returns within the event log's retention (15 minutes).

Progress is not in the log (a heartbeat would otherwise write to it every 10 s per running job,
whether anyone watches or not). The log names the runners holding the user's jobs (``running``);
a response reads those runner rows and sends ``job_updated`` for each job whose progress moved
since the client's last response. The progress the client has seen travels in the SSE id, after
the sequence number: ``id: 42~7:35,9:0`` = "event 42 seen; job 7 was at 35 %, job 9 at 0 %".

The pace adapts to what is going on. A user with recent events or with work in flight (a job a
runner holds, or one waiting in the queue) is *live* and comes back every 3 seconds; a quiet tab is *idle* and
comes back every half minute. The arithmetic behind the numbers is in ``docs/events.md``;
in short, with 1024 MB Lambdas every second a response is held open costs as much as 3-4 extra
requests, so reconnecting is cheaper than holding for every latency we care about, and the
holds are zero. The polling loop stays, so a cheaper deployment (a small dedicated function)
can hold responses open by changing one number here.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..store import runners as runner_store
from ..store.events import Snapshot
from . import events


@dataclass(frozen=True)
class Pace:
    hold_s: float  # how long one response keeps polling the log before it ends
    retry_ms: int  # the SSE ``retry:`` sent with it: the pause before the client reconnects


# Every tuning knob of the stream, in one place (docs/events.md derives the cost from these).
POLL_INTERVAL_S = 1.0  # while holding: look at the log this often
LIVE_WINDOW_S = 300  # a user whose newest event is younger than this is "live"
IN_FLIGHT_LIMIT_S = 6 * 3600  # a job waiting longer than this without any event keeps no tab live
LIVE = Pace(hold_s=0.0, retry_ms=3_000)  # events reach a live user within ~3 s (~$0.006/hour)
IDLE = Pace(hold_s=0.0, retry_ms=30_000)  # an idle tab costs ~$0.017/day (docs/events.md)
MAX_HOLD_S = 25.0  # API Gateway cuts integrations at 29 s; a response must end well before
BATCH_LIMIT = 500  # events per response; the rest follow on the next (immediate) reconnect

CONTENT_TYPE = "text/event-stream; charset=utf-8"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


MAX_TRACKED_JOBS = 50  # progress of at most this many running jobs travels in the id


def parse_position(value: str | None) -> int | None:
    """The sequence number in a client's ``Last-Event-ID``; None if absent or not one of ours."""
    if value is None:
        return None
    value = value.strip().split("~", 1)[0]
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def parse_progress(value: str | None) -> dict[int, int] | None:
    """The progress per job that a client's ``Last-Event-ID`` says it has seen (None: none known)."""
    if value is None or "~" not in value:
        return None
    seen: dict[int, int] = {}
    for pair in value.strip().split("~", 1)[1].split(",")[:MAX_TRACKED_JOBS]:
        job, _, pct = pair.partition(":")
        if job.isdigit() and pct.isdigit() and len(job) <= 18 and len(pct) <= 3:
            seen[int(job)] = int(pct)
    return seen


def stream(user_id: int, position: int | None, seen_progress: dict[int, int] | None = None, *,
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> str:
    """The body of one SSE response for ``user_id`` whose client has seen events up to ``position``
    (and the progress ``seen_progress`` of the user's running jobs).

    Without a position (a new connection) the client starts at the newest event: history is not
    replayed, only what happens from now on. A position beyond the newest event (the log was
    reset) is treated the same way.
    """
    started = clock()
    log = events.read(user_id)
    events.trim_if_due(user_id, log)  # transactional publishes cannot trim; readers do (rarely)
    if position is None or position > log.newest_seq:
        position = log.newest_seq
        seen_progress = None
    progress = _progress(log)
    moved = [job for job, pct in progress.items() if seen_progress is not None and job in seen_progress
             and seen_progress[job] != pct]
    batch = events.after(log, position, BATCH_LIMIT)
    pace = LIVE if batch or progress or _waiting(log) or _is_recent(log) else IDLE  # progress: held jobs

    retry_ms = pace.retry_ms
    body: list[str] = []
    while True:
        for event in batch:
            position = event.seq
            body.append(f"id: {position}\nevent: {event.event}\ndata: {event.job_id}\n\n")
        if len(batch) >= BATCH_LIMIT:
            retry_ms = 0  # more are waiting: come straight back for them
            break
        if pace.hold_s - (clock() - started) < POLL_INTERVAL_S:
            break
        sleep(POLL_INTERVAL_S)
        batch = events.since(user_id, position, BATCH_LIMIT)
    for job in moved:
        body.append(f"event: {events.JOB_UPDATED}\ndata: {job}\n\n")
    if progress:
        state = ",".join(f"{job}:{pct}" for job, pct in sorted(progress.items()))
        body.append(f"id: {position}~{state}\n\n")  # sets the client's id; fires no event
    elif not body:
        body.append(f"id: {position}\n\n")  # tells a new client its position; fires no event
    body.insert(0, f"retry: {retry_ms}\n\n")
    return "".join(body)


def _progress(log: Snapshot) -> dict[int, int]:
    """Whole-percent progress of the user's jobs that runners hold (one BatchGetItem, none if idle)."""
    running = dict(sorted(log.running.items())[:MAX_TRACKED_JOBS])
    if not running:
        return {}
    rows = runner_store.get_many(list(running.values()))
    found = {}
    for job_id, token_hash in running.items():
        row = rows.get(token_hash)
        if row is not None and row.job_id is not None and int(row.job_id) == job_id:
            found[job_id] = int(round(float(row.progress or 0)))
    return found


def _waiting(log: Snapshot) -> bool:
    """One of the user's jobs waits in the queue. (Held jobs are checked against their runner rows
    by ``_progress``; a ``waiting`` member left behind by some unforeseen path would keep the tab
    live, so ``IN_FLIGHT_LIMIT_S`` after the user's last event only events count.)"""
    return bool(log.waiting) and wall_clock() - log.last_at < IN_FLIGHT_LIMIT_S


def _is_recent(log: Snapshot) -> bool:
    return bool(log.entries) and wall_clock() - log.entries[-1].at < LIVE_WINDOW_S


def wall_clock() -> float:
    """Epoch seconds (one place, so tests can move it)."""
    return time.time()
