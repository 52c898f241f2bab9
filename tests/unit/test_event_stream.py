"""services/event_stream.py: the body of one SSE response, with a fake clock (no HTTP)."""
from __future__ import annotations

from tests.factories import commit_events

import pytest

from chalicelib.services import event_stream, events
from chalicelib.services.event_stream import Pace
from chalicelib.store import lifecycle, transact
from chalicelib.store.events import EventLog

USER = 41


def lines(body: str, field: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in body.splitlines() if line.startswith(field + ": ")]


def test_new_connection_gets_its_position_and_no_history():
    for job_id in (1, 2, 3):
        lifecycle.announce(USER, events.JOB_CREATED, [job_id])
    body = event_stream.stream(USER, None)
    # the position travels in a block with data, under a name no stock client listens to
    assert lines(body, "event") == [event_stream.POSITION_EVENT]
    assert lines(body, "id") == ["3"] and lines(body, "data") == ["3"]
    assert lines(body, "retry") == [str(event_stream.LIVE.retry_ms)]  # recent events: live


def test_quiet_user_is_told_to_come_back_later():
    body = event_stream.stream(USER, None)
    assert lines(body, "id") == ["0"] and lines(body, "data") == ["0"]
    assert lines(body, "retry") == [str(event_stream.IDLE.retry_ms)]


def test_events_after_the_position_are_replayed_in_order():
    lifecycle.announce(USER, events.JOB_CREATED, [10])
    first = events.latest_seq(USER)
    lifecycle.announce(USER, events.JOB_UPDATED, [10])
    lifecycle.announce(USER, events.JOB_DELETED, [11])
    lifecycle.announce(USER + 1, events.JOB_CREATED, [99])  # someone else's
    body = event_stream.stream(USER, first)
    assert body == (f"retry: {event_stream.LIVE.retry_ms}\n\n"
                    f"id: {first + 1}\nevent: job_updated\ndata: 10\n\n"
                    f"id: {first + 2}\nevent: job_deleted\ndata: 11\n\n"
                    f"id: {first + 2}\nevent: wisp_position\ndata: {first + 2}\n\n")


def test_a_position_beyond_the_log_restarts_at_the_newest_event():
    lifecycle.announce(USER, events.JOB_CREATED, [1])
    assert lines(event_stream.stream(USER, 500), "id") == ["1"]


def test_old_events_do_not_make_a_user_live():
    lifecycle.announce(USER, events.JOB_CREATED, [1])
    seq = events.latest_seq(USER)
    _age_log(USER, event_stream.LIVE_WINDOW_S + 1)
    assert lines(event_stream.stream(USER, seq), "retry") == [str(event_stream.IDLE.retry_ms)]


def _age_log(user_id: int, seconds: int) -> None:
    """Make every entry of the user's log ``seconds`` older."""
    log = EventLog.get(user_id)
    older = []
    for raw in log.entries:
        at, rest = raw.split(" ", 1)
        older.append(f"{int(at) - seconds} {rest}")
    log.update(actions=[EventLog.entries.set(older)])


def test_events_past_retention_are_not_replayed_and_are_dropped_by_a_later_publish():
    lifecycle.announce(USER, events.JOB_CREATED, [1])
    lifecycle.announce(USER, events.JOB_UPDATED, [1])
    _age_log(USER, events.RETENTION_SECONDS + 1)
    assert events.since(USER, 0) == []  # too old to replay, though still in the item
    assert events.latest_seq(USER) == 2  # the numbering goes on
    _age_log(USER, events.TRIM_SLACK_SECONDS)
    lifecycle.announce(USER, events.JOB_DELETED, [1])
    log = events.read(USER)
    assert [(e.seq, e.event) for e in log.entries] == [(3, "job_deleted")]  # old ones dropped, seq kept
    assert [e.seq for e in events.since(USER, 0)] == [3]


def test_the_log_is_bounded(monkeypatch):
    monkeypatch.setattr(transact, "MAX_ENTRIES", 8)
    for job_id in range(20):
        lifecycle.announce(USER, events.JOB_UPDATED, [job_id])
    log = events.read(USER)
    assert 6 <= len(log.entries) <= 8 and log.newest_seq == 20
    assert [e.job_id for e in log.entries] == list(range(20 - len(log.entries), 20))


def test_a_full_batch_asks_the_client_to_come_straight_back(monkeypatch):
    monkeypatch.setattr(event_stream, "BATCH_LIMIT", 3)
    for job_id in range(5):
        lifecycle.announce(USER, events.JOB_UPDATED, [job_id])
    body = event_stream.stream(USER, 0)
    assert lines(body, "id") == ["1", "2", "3", "3"] and lines(body, "retry") == ["0"]


@pytest.mark.parametrize("raw, expected", [(None, None), ("17", 17), (" 17 ", 17), ("", None), ("-1", None),
                                           ("abc", None), ("1e3", None), ("9" * 40, None), ("17~cab12~o99", 17)])
def test_parse_position(raw, expected):
    found = event_stream.Position.parse(raw)
    assert (found.seq if found else None) == expected


def test_a_position_renders_and_parses_back_and_the_earlier_form_is_understood():
    position = event_stream.Position(42, {9: 0, 7: 35}, "ab12cd34ef", 1_700_000_000)
    assert position.render() == "42~p7:35,9:0~cab12cd34ef~o1700000000"
    assert event_stream.Position.parse(position.render()) == position
    assert event_stream.Position.parse("42~7:35,9:0") == event_stream.Position(42, {7: 35, 9: 0})  # before 0.7
    assert event_stream.Position.parse("42~c../x~oabc") == event_stream.Position(42)  # junk fields are ignored


def test_every_pace_brings_the_client_back_within_a_minute():
    for pace in (event_stream.LIVE, event_stream.IDLE):
        assert 0 < pace.retry_ms <= 60_000


# ------------------------------------------------------------------------------------------
# Cost (docs/events.md): the constants must keep an idle tab within $0.02 a day
# ------------------------------------------------------------------------------------------

# List prices (USD, us-east-1), as in docs/events.md
API_GATEWAY_REST = 3.50e-6  # per request
LAMBDA_REQUEST = 0.20e-6
LAMBDA_GB_SECOND = 0.0000166667
DYNAMODB_READ_UNIT = 0.25e-6  # on-demand RRU (pre-Nov-2024 price; today's is half)
DYNAMODB_WRITE_UNIT = 1.25e-6
LOGS_PER_GB = 0.50
# Per-response assumptions
WARM_BILLED_S = 0.05  # auth (2 GetItem) + 1 GetItem of the event log, warm; billed per ms
READ_UNITS = 1.5  # token, user and event-log GetItem: 0.5 RRU each (eventually consistent, ≤ 4 KB)
LOG_BYTES = 300  # START/END/REPORT lines
ROUND_TRIP_S = 0.1  # added to retry for one cycle


RUNNER_ROW_READ_UNITS = 1.0  # per running job: its runner row, strongly consistent (progress)
# A response held open for new events would look at the log this often (the alternative that
# test_at_the_configured_memory_holding_costs_more_than_reconnecting prices)
HOLD_POLL_INTERVAL_S = 1.0


def cost_per_response(memory_gb: float, running_jobs: int = 0, hold_s: float = 0.0) -> float:
    held = hold_s + WARM_BILLED_S
    polls = hold_s / HOLD_POLL_INTERVAL_S
    reads = READ_UNITS + 0.5 * polls + RUNNER_ROW_READ_UNITS * running_jobs
    return (API_GATEWAY_REST + LAMBDA_REQUEST + held * memory_gb * LAMBDA_GB_SECOND
            + reads * DYNAMODB_READ_UNIT + LOG_BYTES / 1e9 * LOGS_PER_GB)


def cost_per_hour(pace: Pace, memory_gb: float, running_jobs: int = 0, connections: int = 1,
                  hold_s: float = 0.0) -> float:
    """One tab of the stock frontend with ``connections`` open EventSources (it opens one more on
    every cookie change and before every submit, and closes none). They share one pace (each comes
    back every ``connections`` × retry), so together they make the requests of one; each writes its
    "last seen" on the token every ``POLLER_REFRESH_S``. Polls write nothing else: no last_usage,
    no rotation. ``hold_s``: what it would cost if each response waited that long for events."""
    cycle = hold_s + pace.retry_ms / 1000 + ROUND_TRIP_S
    writes = connections * 3600 / event_stream.POLLER_REFRESH_S
    return 3600 / cycle * cost_per_response(memory_gb, running_jobs, hold_s) + writes * DYNAMODB_WRITE_UNIT


def lambda_memory_gb() -> float:
    import json
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / ".chalice" / "config.json"
    size = json.loads(config.read_text()).get("lambda_memory_size", 128) if config.exists() else 1024
    return size / 1024


def test_an_idle_tab_costs_at_most_two_cents_a_day():
    memory = lambda_memory_gb()
    for connections in (1, event_stream.MAX_POLLERS):  # however many the stock frontend has opened
        idle_day = 24 * cost_per_hour(event_stream.IDLE, memory, connections=connections)
        assert idle_day <= 0.02, (connections, idle_day)
        # and half an hour of live updates, with a job running, still fits
        live = cost_per_hour(event_stream.LIVE, memory, running_jobs=1, connections=connections)
        assert 23.5 * cost_per_hour(event_stream.IDLE, memory, connections=connections) + 0.5 * live <= 0.02


def test_at_the_configured_memory_holding_costs_more_than_reconnecting():
    # why a response never waits for events; fails (time to reconsider) if the Lambda gets small
    # enough for holding responses open to pay
    memory = lambda_memory_gb()
    reconnect = cost_per_hour(Pace(retry_ms=1000), memory)
    hold = cost_per_hour(Pace(retry_ms=1000), memory, hold_s=20)
    assert reconnect < hold


def _counter_bump(tx):
    """Creates the counter "probe"; refused once it exists."""
    from chalicelib.store.counters import Counter

    tx.update("probe", Counter("probe"), [Counter.value.add(1)], Counter.name.does_not_exist())


def test_commit_writes_the_events_with_the_change_or_not_at_all():
    from chalicelib.store.counters import Counter

    commit_events(_counter_bump, (USER, events.JOB_CREATED, 1), (USER, events.JOB_UPDATED, 1),
                  (USER + 1, events.JOB_UPDATED, 2))
    assert Counter.get("probe").value == 1
    assert [(e.event, e.job_id) for e in events.read(USER).entries] == [("job_created", 1), ("job_updated", 1)]
    with pytest.raises(transact.Cancelled) as refused:
        commit_events(_counter_bump, (USER, events.JOB_DELETED, 1))
    assert refused.value.failed == {"probe"}  # the refusal names the item
    assert Counter.get("probe").value == 1 and events.latest_seq(USER) == 2  # no event for a refused change


def test_commit_into_a_full_log_trims_it_and_retries(monkeypatch):
    monkeypatch.setattr(transact, "MAX_ENTRIES", 8)
    for job_id in range(8):
        lifecycle.announce(USER, events.JOB_UPDATED, [job_id])
    assert len(events.read(USER).entries) == 8
    commit_events(_nothing, (USER, events.JOB_CREATED, 99), (USER, events.JOB_UPDATED, 99))
    log = events.read(USER)
    assert len(log.entries) <= 8 and log.newest_seq == 10
    assert [e.job_id for e in log.entries][-2:] == [99, 99]


def test_a_reader_drops_entries_long_past_retention():
    commit_events(_nothing, (USER, events.JOB_CREATED, 1), (USER, events.JOB_UPDATED, 1))
    _age_log(USER, events.RETENTION_SECONDS + events.TRIM_SLACK_SECONDS + 1)
    event_stream.stream(USER, None)
    log = events.read(USER)
    assert log.entries == [] and log.first_seq == 3  # numbering kept: the next event is 3


def test_work_in_flight_keeps_a_tab_live_and_its_end_lets_it_rest(monkeypatch):
    commit_events(_nothing, (USER, events.JOB_CREATED, 5), held=[(USER, 5, transact.QUEUE)])
    log = events.read(USER)
    assert log.waiting == {5} and log.last_at > 0
    # much later: the event is not "recent" any more, but the job still waits
    monkeypatch.setattr(event_stream, "wall_clock", lambda: log.last_at + event_stream.LIVE_WINDOW_S + 60)
    assert lines(event_stream.stream(USER, None), "retry") == [str(event_stream.LIVE.retry_ms)]  # waiting
    # a runner takes it: running instead of waiting (one write, two sets)
    commit_events(_nothing, (USER, events.JOB_UPDATED, 5), held=[(USER, 5, "runner-hash")],
                  let_go=[(USER, 5, transact.QUEUE)])
    log = events.read(USER)
    assert log.waiting == frozenset() and log.running == {5: "runner-hash"}
    # it finishes: nothing in flight, and once the last event is old the tab rests
    commit_events(_nothing, (USER, events.JOB_UPDATED, 5), let_go=[(USER, 5, "runner-hash")])
    log = events.read(USER)
    assert log.running == {} and log.waiting == frozenset()
    monkeypatch.setattr(event_stream, "wall_clock", lambda: log.last_at + event_stream.LIVE_WINDOW_S + 60)
    assert lines(event_stream.stream(USER, None), "retry") == [str(event_stream.IDLE.retry_ms)]


def test_a_forgotten_waiting_job_stops_keeping_the_tab_live(monkeypatch):
    commit_events(_nothing, (USER, events.JOB_CREATED, 6), held=[(USER, 6, transact.QUEUE)])
    last = events.read(USER).last_at
    monkeypatch.setattr(event_stream, "wall_clock", lambda: last + event_stream.IN_FLIGHT_LIMIT_S + 1)
    assert lines(event_stream.stream(USER, None), "retry") == [str(event_stream.IDLE.retry_ms)]


# ------------------------------------------------------------------------------------------
# Connections: registered on the token, sharing one pace, young ones live
# ------------------------------------------------------------------------------------------


def _connect(token, raw=None):
    """One poll as the route makes it; returns the body and the position the client keeps."""
    from chalicelib.store.tokens import Token

    body = event_stream.respond(USER, Token.get(token.token_hash), raw)
    return body, lines(body, "data")[-1]


@pytest.fixture
def session_token():
    from chalicelib.services import tokens
    from tests.factories import make_user

    return tokens.issue_session(make_user().user, name="tab", admin=False).token


def _writes_to_tokens(monkeypatch):
    from chalicelib.services import tokens

    made = []
    real = tokens.record_pollers
    monkeypatch.setattr(tokens, "record_pollers", lambda *a, **kw: (made.append(kw), real(*a, **kw)))
    return made


def test_a_new_connection_is_recorded_once_and_its_polls_write_nothing(monkeypatch, session_token):
    from chalicelib.services import tokens
    from chalicelib.store.tokens import Token

    writes = _writes_to_tokens(monkeypatch)
    _body, position = _connect(session_token)
    parsed = event_stream.Position.parse(position)
    assert parsed.connection and parsed.opened is not None
    assert writes == [{"opened": True}]
    assert list(tokens.pollers_of(Token.get(session_token.token_hash))) == [parsed.connection]
    for _ in range(5):  # the same connection coming back
        _body, position = _connect(session_token, position)
    assert writes == [{"opened": True}]  # nothing more until the refresh is due
    assert event_stream.Position.parse(position).connection == parsed.connection
    # WHEN the refresh is due THEN one write, which is not a new use of the token
    later = time_after(monkeypatch, event_stream.POLLER_REFRESH_S)
    _connect(session_token, position)
    assert writes == [{"opened": True}, {"opened": False}]
    assert tokens.pollers_of(Token.get(session_token.token_hash))[parsed.connection] == later


def time_after(monkeypatch, seconds: int) -> int:
    import time as real_time

    moment = int(real_time.time()) + seconds
    monkeypatch.setattr(event_stream, "wall_clock", lambda: moment)
    return moment


def test_a_young_connection_is_live_until_it_ages(monkeypatch, session_token):
    # GIVEN a user with no events at all: a quiet user
    body, position = _connect(session_token)
    # THEN a new connection still comes back at the live pace (an upload is about to follow)
    assert lines(body, "retry") == [str(event_stream.LIVE.retry_ms)]
    time_after(monkeypatch, event_stream.YOUNG_S + 1)
    body, _ = _connect(session_token, position)
    assert lines(body, "retry") == [str(event_stream.IDLE.retry_ms)]


def test_the_connections_of_one_token_share_one_pace(monkeypatch, session_token):
    # GIVEN a tab of the stock frontend with five EventSources open (one per cookie change and submit)
    time_after(monkeypatch, 0)
    positions = [_connect(session_token)[1] for _ in range(5)]
    slots = {event_stream.Position.parse(p).connection for p in positions}
    assert len(slots) == 5
    # WHEN they follow the stream for an idle hour, each coming back when told to
    start = event_stream.wall_clock() + event_stream.YOUNG_S + 1
    due = [start + i * 0.7 for i in range(5)]  # opened at slightly different moments
    polls = []
    while min(due) < start + 3600:
        i = due.index(min(due))
        now = due[i]
        monkeypatch.setattr(event_stream, "wall_clock", lambda now=now: now)
        body, positions[i] = _connect(session_token, positions[i])
        polls.append(now)
        due[i] = now + int(lines(body, "retry")[0]) / 1000 + 0.1
    # THEN together they poll about as often as one connection would, evenly spread
    alone = 3600 / (event_stream.IDLE.retry_ms / 1000)
    assert len(polls) <= alone * 1.1, len(polls)
    gaps = [b - a for a, b in zip(polls, polls[1:])]
    assert max(gaps[10:]) <= event_stream.IDLE.retry_ms / 1000 * 1.6, max(gaps[10:])


@pytest.mark.parametrize("count, index", [(1, 0), (3, 0), (3, 2), (16, 7)])
def test_a_slot_waits_for_its_own_turn(count, index):
    slot = event_stream.Slot(count, index)
    for now in (0.0, 1.3, 29.9, 1234.5):
        wait = slot.wait_ms(30_000, now) / 1000
        assert 15 <= wait <= 30 * count + 15
        if count > 1:
            assert round((now + wait) % (30 * count), 3) == round(index * 30.0, 3)



def _nothing(_tx):
    """No items of its own: the events alone."""
