"""chalicelib/periodic.py and services/maintenance.py: the daily tasks (spec §11), on moto.

Time is frozen by passing ``now``; rows are written with explicit timestamps relative to it.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import periodic
from chalicelib.store.counters import next_id
from chalicelib.store.task_runs import TaskRun
from chalicelib.store.tokens import Token
from chalicelib.store.users import User
from tests import factories
from tests.support import settings_with

DAY = timedelta(days=1)
RETENTION_DAYS = 100


@pytest.fixture
def now() -> datetime:
    # real time plus a little, so objects moto stamps with the real clock count as "new"
    return datetime.now(timezone.utc) + timedelta(minutes=5)


@pytest.fixture
def retention(use_settings):
    """Turn user retention on (the test config leaves it off)."""
    from chalicelib.services import maintenance  # noqa: F401  (loaded, so use_settings reaches it)

    return use_settings(settings_with("cleanup", user_retention_in_days=RETENTION_DAYS))


def new_user(email: str | None = None, *, provision_number: int | None = None) -> User:
    return factories.make_user(email, provision_number=provision_number).user


def new_token(user: User, *, last_usage: datetime, expires_at: datetime | None, explicit: bool = False) -> Token:
    token_id = next_id("token")
    token = Token(f"hash-{token_id}", id=token_id, user_id=user.id, name="t", explicit=explicit,
                  admin_privileges=False, expires_at=expires_at, last_usage=last_usage)
    token.save()
    return token


def token_ids(user: User) -> set[int]:
    return {int(t.id) for t in Token.by_user.query(user.id)}


def user_exists(user: User) -> bool:
    return User.count(user.id) == 1


# ------------------------------------------------------------------------------------------
# Scheduling: once per 23 h, failures give the slot back
# ------------------------------------------------------------------------------------------


def test_tasks_run_once_per_23_hours(now):
    assert periodic.run_all(now=now) == {"general_cleanup": "ran", "job_cleanup": "disabled",
                                         "user_cleanup": "disabled"}
    assert periodic.run_all(now=now + timedelta(hours=22, minutes=59))["general_cleanup"] == "skipped"
    assert periodic.run_all(now=now + timedelta(hours=23))["general_cleanup"] == "ran"
    assert TaskRun.get("general_cleanup").last_run_at == now + timedelta(hours=23)


def test_a_failing_task_gives_its_slot_back_and_does_not_stop_the_others(now, retention, monkeypatch):
    from chalicelib.services import maintenance

    def boom(*, now):
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(maintenance, "delete_expired_sessions", boom)
    assert periodic.run_all(now=now) == {"general_cleanup": "failed", "job_cleanup": "disabled",
                                         "user_cleanup": "ran"}
    assert TaskRun.count("general_cleanup") == 0  # free to run again
    monkeypatch.undo()
    assert periodic.run_all(now=now + timedelta(minutes=10))["general_cleanup"] == "ran"


def test_overdue_tasks_are_reported(now):
    assert periodic.check_overdue(now=now) == ["general_cleanup"]
    periodic.run_all(now=now)
    assert periodic.check_overdue(now=now + timedelta(hours=24)) == []
    assert periodic.check_overdue(now=now + timedelta(hours=26)) == ["general_cleanup"]


def test_schedules_register_the_daily_tasks_and_the_sweeper(now):
    from chalice import Chalice
    from chalice.test import Client

    from chalicelib import schedules

    app = Chalice(app_name="periodic-test")
    schedules.register(app)
    sources = {s.name: s.schedule_expression.to_string() for s in app.event_sources}
    assert sources == {schedules.DAILY_NAME: "cron(0 0 * * ? *)", schedules.SWEEP_NAME: "rate(1 minute)"}
    with Client(app) as client:
        result = client.lambda_.invoke(schedules.DAILY_NAME, client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert result.payload["general_cleanup"] == "ran"
