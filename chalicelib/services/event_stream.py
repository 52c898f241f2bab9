"""Short-lived Server-Sent Events responses for /api/jobs/events (spec §7, §13).

Lambda behind API Gateway cannot keep a response open, so every response is a finished batch:
the events after the client's position, an ``id:`` with the new position and a ``retry:`` that
says when to come back. EventSource clients treat the end of a response as a dropped connection,
reconnect after ``retry`` milliseconds and send the last ``id`` as ``Last-Event-ID``, so no event
is lost as long as the client returns within the event log's retention (15 minutes).

The pace adapts to what is going on. A user with recent events (a job was just submitted, a
runner reports progress) is *live* and comes back every 3 seconds; a quiet tab is *idle* and
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

from ..store.events import Snapshot
from . import events


@dataclass(frozen=True)
class Pace:
    hold_s: float  # how long one response keeps polling the log before it ends
    retry_ms: int  # the SSE ``retry:`` sent with it: the pause before the client reconnects


# Every tuning knob of the stream, in one place (docs/events.md derives the cost from these).
POLL_INTERVAL_S = 1.0  # while holding: look at the log this often
LIVE_WINDOW_S = 300  # a user whose newest event is younger than this is "live"
LIVE = Pace(hold_s=0.0, retry_ms=3_000)  # events reach a live user within ~3 s (~$0.006/hour)
IDLE = Pace(hold_s=0.0, retry_ms=30_000)  # an idle tab costs ~$0.017/day (docs/events.md)
MAX_HOLD_S = 25.0  # API Gateway cuts integrations at 29 s; a response must end well before
BATCH_LIMIT = 500  # events per response; the rest follow on the next (immediate) reconnect

CONTENT_TYPE = "text/event-stream; charset=utf-8"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def parse_position(value: str | None) -> int | None:
    """A client's ``Last-Event-ID`` as a sequence number; None if absent or not one of ours."""
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def stream(user_id: int, position: int | None, *, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> str:
    """The body of one SSE response for ``user_id`` whose client has seen events up to ``position``.

    Without a position (a new connection) the client starts at the newest event: history is not
    replayed, only what happens from now on. A position beyond the newest event (the log was
    reset) is treated the same way.
    """
    started = clock()
    log = events.read(user_id)
    if position is None or position > log.newest_seq:
        position = log.newest_seq
    batch = events.after(log, position, BATCH_LIMIT)
    pace = LIVE if batch or _is_recent(log) else IDLE

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
    if not body:
        body.append(f"id: {position}\n\n")  # tells a new client its position; fires no event
    body.insert(0, f"retry: {retry_ms}\n\n")
    return "".join(body)


def _is_recent(log: Snapshot) -> bool:
    return bool(log.entries) and time.time() - log.entries[-1].at < LIVE_WINDOW_S
