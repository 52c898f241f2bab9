"""chalicelib/periodic.py and services/maintenance.py: the daily tasks (spec §11), on moto.

Time is frozen by passing ``now``; rows are written with explicit timestamps relative to it.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import aws, periodic
from chalicelib.settings import CleanupSettings, environment, get_settings
from chalicelib.store.counters import next_id
from chalicelib.store.jobs import Job
from chalicelib.store.task_runs import TaskRun
from chalicelib.store.tokens import Token
from chalicelib.store.users import Login, User, local_login_key
from tests.factories import sent_mail

DAY = timedelta(days=1)
RETENTION_DAYS = 100


@pytest.fixture
def now() -> datetime:
    # real time plus a little, so objects moto stamps with the real clock count as "new"
    return datetime.now(timezone.utc) + timedelta(minutes=5)


@pytest.fixture
def retention(monkeypatch):
    """Turn user retention on (the test config leaves it off)."""
    settings = get_settings().model_copy(update={"cleanup": CleanupSettings(user_retention_in_days=RETENTION_DAYS)})
    monkeypatch.setattr(periodic, "get_settings", lambda: settings)
    from chalicelib.services import maintenance

    monkeypatch.setattr(maintenance, "get_settings", lambda: settings)
    return settings


def new_user(email: str | None = None, *, provision_number: int | None = None) -> User:
    user_id = next_id("user")
    email = email or f"user{user_id}@example.org"
    user = User(user_id, user_type="local", email=email, login_key=local_login_key(email), is_verified=True,
                provision_number=provision_number)
    user.save()
    Login(local_login_key(email), user_id=user_id).save()
    return user


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


def test_register_adds_a_daily_schedule(now):
    from chalice import Chalice
    from chalice.test import Client

    app = Chalice(app_name="periodic-test")
    periodic.register(app)
    [source] = app.event_sources
    assert source.name == periodic.SCHEDULE_NAME
    assert source.schedule_expression.to_string() == "cron(0 0 * * ? *)"
    with Client(app) as client:
        result = client.lambda_.invoke(periodic.SCHEDULE_NAME, client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert result.payload["general_cleanup"] == "ran"


# ------------------------------------------------------------------------------------------
# General cleanup: tokens
# ------------------------------------------------------------------------------------------


def test_expired_sessions_are_deleted_except_each_users_most_recent_token(now):
    # GIVEN a user whose newest token is an expired session, and older expired and live tokens
    alice = new_user()
    newest_expired = new_token(alice, last_usage=now - 2 * DAY, expires_at=now - 2 * DAY + timedelta(hours=1))
    older_expired = new_token(alice, last_usage=now - 5 * DAY, expires_at=now - 5 * DAY + timedelta(hours=1))
    live = new_token(alice, last_usage=now - 3 * DAY, expires_at=now + timedelta(minutes=30))
    api_token = new_token(alice, last_usage=now - 9 * DAY, expires_at=None, explicit=True)
    # AND a user whose newest token is an API token
    bob = new_user()
    bob_api = new_token(bob, last_usage=now - DAY, expires_at=None, explicit=True)
    bob_expired = new_token(bob, last_usage=now - 3 * DAY, expires_at=now - 3 * DAY)
    # WHEN the daily cleanup runs
    periodic.run_all(now=now)
    # THEN only expired sessions that are not the user's newest token are gone
    assert token_ids(alice) == {int(newest_expired.id), int(live.id), int(api_token.id)}
    assert int(older_expired.id) not in token_ids(alice)
    assert token_ids(bob) == {int(bob_api.id)}
    assert int(bob_expired.id) not in token_ids(bob)


# ------------------------------------------------------------------------------------------
# General cleanup: orphaned audio
# ------------------------------------------------------------------------------------------


def put_audio(key: str) -> None:
    aws.client("s3").put_object(Bucket=environment().bucket, Key=key, Body=b"RIFF....")


def bucket_keys() -> set[str]:
    found = aws.client("s3").list_objects_v2(Bucket=environment().bucket)
    return {o["Key"] for o in found.get("Contents", [])}


def test_orphaned_audio_older_than_a_day_is_deleted(now):
    owner = new_user()
    Job(501, user_id=owner.id, file_name="kept.wav", audio_key="audio/501", queue="q").save()
    Job(502, user_id=owner.id, file_name="done.wav", audio_key=None).save()  # finished, audio dropped
    for key in ("audio/501", "audio/502", "audio/503", "audio/stray.tmp", "transcripts/501/as_txt"):
        put_audio(key)
    # a day later: the pending job's audio stays; the others are orphans; transcripts are not audio
    periodic.run_all(now=now + DAY)
    assert bucket_keys() == {"audio/501", "transcripts/501/as_txt"}


def test_fresh_audio_without_a_job_is_kept(now):
    put_audio("audio/777")  # its job row may still be being written
    periodic.run_all(now=now)
    assert bucket_keys() == {"audio/777"}


# ------------------------------------------------------------------------------------------
# User retention
# ------------------------------------------------------------------------------------------


def inactive_user(now: datetime, days: float, **kw) -> User:
    user = new_user(**kw)
    new_token(user, last_usage=now - timedelta(days=days), expires_at=now - timedelta(days=days) + timedelta(hours=1))
    return user


def test_user_retention_warns_at_30_and_7_days_and_deletes_after(now, retention):
    # GIVEN users at different distances from deletion (retention 100 days)
    warn30 = inactive_user(now, RETENTION_DAYS - 30.5, email="warn30@example.org")
    warn7 = inactive_user(now, RETENTION_DAYS - 7.5, email="warn7@example.org")
    quiet = [inactive_user(now, d) for d in (RETENTION_DAYS - 29.5, RETENTION_DAYS - 31.5, RETENTION_DAYS - 6.5, 1)]
    gone = inactive_user(now, RETENTION_DAYS + 0.5, email="gone@example.org")
    provisioned = inactive_user(now, RETENTION_DAYS + 50, provision_number=7)
    tokenless = new_user()
    # WHEN the daily tasks run
    assert periodic.run_all(now=now)["user_cleanup"] == "ran"
    # THEN each warning went to exactly its users, in Bcc
    mails = {m.subject: m for m in sent_mail()}
    assert set(mails) == {"Wisp: your account will be deleted in 30 days",
                          "Wisp: your account will be deleted in 7 days"}
    assert mails["Wisp: your account will be deleted in 30 days"].bcc == [warn30.email]
    assert mails["Wisp: your account will be deleted in 7 days"].bcc == [warn7.email]
    assert all(m.to == [] for m in mails.values())
    # AND only the inactive, non-provisioned user with tokens is deleted, with its tokens and login
    assert not user_exists(gone) and token_ids(gone) == set() and Login.count(gone.login_key) == 0
    assert all(user_exists(u) for u in [warn30, warn7, *quiet, provisioned, tokenless])


def test_warnings_are_sent_once_and_tokens_kept_for_activity(now, retention):
    user = inactive_user(now, RETENTION_DAYS - 30.5)
    periodic.run_all(now=now)
    periodic.run_all(now=now + DAY)  # the next day: no second 30-day warning
    periodic.run_all(now=now + 2 * DAY)
    assert [m.subject for m in sent_mail()] == ["Wisp: your account will be deleted in 30 days"]
    # the expired session was the user's newest token, so cleanup kept it and activity is still known
    assert len(token_ids(user)) == 1


def test_user_retention_walks_through_warnings_to_deletion_day_by_day(now, retention):
    user = inactive_user(now, 50, email="walker@example.org")
    for day in range(0, 60):
        periodic.run_all(now=now + day * DAY)
    subjects = [m.subject for m in sent_mail()]
    assert subjects == ["Wisp: your account will be deleted in 30 days",
                        "Wisp: your account will be deleted in 7 days"]
    assert not user_exists(user)


def test_after_an_outage_one_warning_names_the_days_actually_left(now, retention):
    user = inactive_user(now, RETENTION_DAYS - 20.5, email="late@example.org")
    TaskRun("user_cleanup", last_run_at=now - 15 * DAY).save()  # missed both days of the 30-day warning
    periodic.run_all(now=now)
    [message] = sent_mail()
    assert message.subject == "Wisp: your account will be deleted in 20 days"
    assert message.bcc == [user.email]
