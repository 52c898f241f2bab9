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
requests, so reconnecting is cheaper than holding for every latency we care about: a response
never waits for events, it answers with what the log holds and ends.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from ..store import runners as runner_store
from ..store.events import Snapshot
from ..store.tokens import Token
from . import events, tokens


@dataclass(frozen=True)
class Pace:
    retry_ms: int  # the SSE ``retry:`` sent with a response: the pause before the client reconnects


# Every tuning knob of the stream, in one place (docs/events.md derives the cost from these).
LIVE_WINDOW_S = 300  # a user whose newest event is younger than this is "live"
IN_FLIGHT_LIMIT_S = 6 * 3600  # a job waiting longer than this without any event keeps no tab live
LIVE = Pace(retry_ms=3_000)  # events reach a live user within ~3 s (~$0.006/hour)
IDLE = Pace(retry_ms=30_000)  # an idle tab costs ~$0.017/day (docs/events.md)
BATCH_LIMIT = 500  # events per response; the rest follow on the next (immediate) reconnect

CONTENT_TYPE = "text/event-stream; charset=utf-8"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


MAX_TRACKED_JOBS = 50  # progress of at most this many running jobs travels in the id

# A connection (one EventSource) is young for this long after it opened: it polls at the live pace
# whatever the user's log says. The stock frontend opens a new connection just before each upload,
# so the upload's job_created reaches it within the live interval even after a quiet spell.
YOUNG_S = 120
# Event-stream connections per token, recorded on the token row (services/tokens.py). A tab of the
# stock frontend never closes a connection: it opens another one on every cookie change and before
# every submit. The connections of one token share the pace of one: with k of them, each comes
# back every k × retry, in its own slot of the cycle, so together they poll as often as one would.
POLLER_REFRESH_S = 900  # a connection's "last seen" is written this often (not on every poll)
POLLER_STALE_S = 1800  # not seen for this long: gone (a closed tab); > refresh + the longest cycle (16 × 30 s)
MAX_POLLERS = 16  # connections remembered per token (the most recently seen)

POSITION_EVENT = "wisp_position"  # the block that carries the position; no stock client listens to it


@dataclass(frozen=True)
class Position:
    """What a client's ``Last-Event-ID`` (or ``last_event_id`` query) says.

    Its text is ``<seq>[~p<job>:<pct>,...][~c<connection>][~o<opened>]``: the sequence number of
    the last event seen, the progress seen per running job, the connection's id and the epoch
    second it opened. ``<seq>~<job>:<pct>,...`` (progress without its ``p``) is the form of
    earlier Wisp versions and still understood.
    """

    seq: int | None = None  # None: a new connection, starting at the newest event
    progress: dict[int, int] | None = None  # None: the client has seen no progress
    connection: str | None = None
    opened: int | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "Position | None":
        """None if ``raw`` is absent or not one of ours."""
        if raw is None:
            return None
        head, *fields = raw.strip().split("~")
        if not head.isdigit() or len(head) > 18:
            return None
        progress = connection = opened = None
        for item in fields[:4]:
            if item[:1].isdigit():
                progress = _parse_progress(item)  # earlier form, without the tag
            elif item.startswith("p"):
                progress = _parse_progress(item[1:])
            elif item.startswith("c") and item[1:].isalnum() and 0 < len(item) <= 17:
                connection = item[1:]
            elif item.startswith("o") and item[1:].isdigit() and len(item) <= 12:
                opened = int(item[1:])
        return cls(int(head), progress, connection, opened)

    def render(self) -> str:
        parts = [str(self.seq or 0)]
        if self.progress:
            parts.append("p" + ",".join(f"{job}:{pct}" for job, pct in sorted(self.progress.items())))
        if self.connection:
            parts.append(f"c{self.connection}")
        if self.opened is not None:
            parts.append(f"o{self.opened}")
        return "~".join(parts)


def _parse_progress(text: str) -> dict[int, int]:
    seen: dict[int, int] = {}
    for pair in text.split(",")[:MAX_TRACKED_JOBS]:
        job, _, pct = pair.partition(":")
        if job.isdigit() and pct.isdigit() and len(job) <= 18 and len(pct) <= 3:
            seen[int(job)] = int(pct)
    return seen


def respond(user_id: int, token: Token, raw: str | None) -> str:
    """The body of one SSE response for the client whose ``Last-Event-ID`` is ``raw``, which
    authenticated with ``token``: records the connection on the token when it is new (and every
    ``POLLER_REFRESH_S``), and gives it its slot among the token's connections."""
    at = int(wall_clock())
    position = Position.parse(raw) or Position()
    connection, opened = position.connection, position.opened
    if position.seq is None or connection is None or opened is None:  # a new connection
        connection, opened = secrets.token_hex(5), at
    pollers = {conn: seen for conn, seen in tokens.pollers_of(token).items() if at - seen < POLLER_STALE_S}
    if at - pollers.get(connection, -POLLER_REFRESH_S) >= POLLER_REFRESH_S:
        pollers[connection] = at
        pollers = dict(sorted(pollers.items(), key=lambda item: (-item[1], item[0]))[:MAX_POLLERS])
        tokens.record_pollers(token, pollers, opened=opened == at)
    slot = Slot(len(pollers), sorted(pollers).index(connection)) if connection in pollers else Slot()
    return stream(user_id, position.seq, position.progress, connection=connection, opened=opened, slot=slot)


@dataclass(frozen=True)
class Slot:
    """This connection's place among ``count`` connections of one token that share one pace."""

    count: int = 1
    index: int = 0

    def wait_ms(self, retry_ms: int, now: float) -> int:
        """The pause before this connection comes back: ``retry_ms`` for a lone connection; with
        several, the start of its own slot in a cycle of ``count`` × ``retry_ms`` (never less
        than half a slot away, so a poll that arrives early does not come straight back)."""
        if self.count <= 1 or retry_ms <= 0:
            return retry_ms
        slot = retry_ms / 1000
        wait = (self.index * slot - now) % (slot * self.count)
        if wait < slot / 2:
            wait += slot * self.count
        return int(wait * 1000)


def stream(user_id: int, position: int | None, seen_progress: dict[int, int] | None = None, *,
           connection: str | None = None, opened: int | None = None, slot: Slot = Slot()) -> str:
    """The body of one SSE response for ``user_id`` whose client has seen events up to ``position``
    (and the progress ``seen_progress`` of the user's running jobs).

    Without a position (a new connection) the client starts at the newest event: history is not
    replayed, only what happens from now on. A position beyond the newest event (the log was
    reset) is treated the same way. Every response ends with a ``wisp_position`` block that
    carries the new position both as ``id:`` and as ``data:``, so clients that drop blocks
    without data (the ``eventsource`` npm package) and clients that read only ``data:`` learn it.
    """
    log = events.read(user_id)
    events.trim_if_due(user_id, log)  # transactional publishes cannot trim; readers do (rarely)
    if position is None or position > log.newest_seq:
        position = log.newest_seq
        seen_progress = None
    progress = _progress(log)
    moved = [job for job, pct in progress.items() if seen_progress is not None and job in seen_progress
             and seen_progress[job] != pct]
    batch = events.after(log, position, BATCH_LIMIT)
    now = wall_clock()
    young = opened is not None and now - opened < YOUNG_S
    live = batch or progress or young or _waiting(log, now) or _is_recent(log, now)  # progress: held jobs
    pace = LIVE if live else IDLE

    def where(seq: int, seen: dict[int, int] | None = None) -> str:
        return Position(seq, seen, connection, opened).render()

    retry_ms = slot.wait_ms(pace.retry_ms, now)
    body: list[str] = []
    for event in batch:
        position = event.seq
        body.append(f"id: {where(position)}\nevent: {event.event}\ndata: {event.job_id}\n\n")
    if len(batch) >= BATCH_LIMIT:
        retry_ms = 0  # more are waiting: come straight back for them
    for job in moved:
        body.append(f"event: {events.JOB_UPDATED}\ndata: {job}\n\n")
    final = where(position, progress)
    body.append(f"id: {final}\nevent: {POSITION_EVENT}\ndata: {final}\n\n")
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


def _waiting(log: Snapshot, now: float) -> bool:
    """One of the user's jobs waits in the queue. (Held jobs are checked against their runner rows
    by ``_progress``; a ``waiting`` member left behind by some unforeseen path would keep the tab
    live, so ``IN_FLIGHT_LIMIT_S`` after the user's last event only events count.)"""
    return bool(log.waiting) and now - log.last_at < IN_FLIGHT_LIMIT_S


def _is_recent(log: Snapshot, now: float) -> bool:
    return bool(log.entries) and now - log.entries[-1].at < LIVE_WINDOW_S


def wall_clock() -> float:
    """Epoch seconds (one place, so tests can move it)."""
    return time.time()
