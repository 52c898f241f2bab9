"""The daily tasks of spec §11 as one scheduled Lambda (EventBridge, 00:00 UTC).

``register(app)`` adds the schedule; ``run_all(now=...)`` runs the tasks, for the schedule, a CLI
(``python -m chalicelib.periodic``) or a test. Each task is skipped if it ran less than 23 hours
ago; a task that fails gives its slot back, so a retry of the invocation runs it again, and a
failure never stops the tasks after it.

Tasks, in order (token cleanup first: user retention measures activity from the tokens it keeps):

* ``general_cleanup``: expired session tokens (except each user's most recently used one) and
  audio objects no job refers to;
* ``job_cleanup``: jobs finished longer ago than ``cleanup.finished_job_retention_in_days``;
* ``user_cleanup``: deletion warnings and deletion of users inactive for
  ``cleanup.user_retention_in_days``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .settings import get_settings
from .store import task_runs
from .store.base import now as utcnow

log = logging.getLogger("wisp.periodic")

MIN_INTERVAL = timedelta(hours=23)  # a task that ran more recently is skipped
OVERDUE_AFTER = timedelta(hours=25)  # check_overdue() warns about tasks older than this


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[datetime, datetime], str]  # (now, previous run or now - 1 day) → summary
    enabled: Callable[[], bool] = lambda: True


def _general_cleanup(now: datetime, since: datetime) -> str:
    from .services import maintenance

    tokens = maintenance.delete_expired_sessions(now=now)
    audio = maintenance.delete_orphaned_audio(now=now)
    return f"deleted {tokens} expired session tokens and {audio} objects and uploads a crash left behind"


def _job_cleanup(now: datetime, since: datetime) -> str:
    from .services import jobs

    return f"deleted {jobs.apply_retention()} finished jobs"


def _user_cleanup(now: datetime, since: datetime) -> str:
    from .services import maintenance

    warned, deleted = maintenance.apply_user_retention(now=now, since=since)
    return f"warned {warned} users, deleted {deleted} users"


TASKS = (
    Task("general_cleanup", _general_cleanup),
    Task("job_cleanup", _job_cleanup, enabled=lambda: bool(get_settings().cleanup.finished_job_retention_in_days)),
    Task("user_cleanup", _user_cleanup, enabled=lambda: bool(get_settings().cleanup.user_retention_in_days)),
)


def run_all(*, now: datetime | None = None) -> dict[str, str]:
    """Run every enabled task that is due; returns task name → "ran" | "skipped" | "disabled" | "failed"."""
    now = now or utcnow()
    outcome: dict[str, str] = {}
    for task in TASKS:
        if not task.enabled():
            outcome[task.name] = "disabled"
            continue
        claimed, previous = task_runs.claim(task.name, now=now, min_interval=MIN_INTERVAL)
        if not claimed:
            log.info("%s: skipped, last ran at %s", task.name, previous)
            outcome[task.name] = "skipped"
            continue
        try:
            summary = task.run(now, previous or now - timedelta(days=1))
        except Exception:  # noqa: BLE001 - one failing task must not stop the others
            log.exception("%s failed", task.name)
            task_runs.release(task.name, previous=previous, claimed=now)
            outcome[task.name] = "failed"
            continue
        log.info("%s: %s", task.name, summary)
        outcome[task.name] = "ran"
    return outcome


def check_overdue(*, now: datetime | None = None) -> list[str]:
    """Enabled tasks that have not run for more than 25 hours (logged as a warning)."""
    now = now or utcnow()
    late = []
    for task in TASKS:
        if task.enabled():
            last = task_runs.last_run(task.name)
            if last is None or now - last > OVERDUE_AFTER:
                late.append(task.name)
    if late:
        log.warning("periodic tasks overdue (not run for over 25 h): %s", ", ".join(late))
    return late


if __name__ == "__main__":
    import json

    from . import logs

    logs.configure()
    print(json.dumps(run_all(), indent=2))
