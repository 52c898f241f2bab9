"""When each periodic task last ran (spec §11: a task is skipped if it ran in the last 23 h).

One row per task name. A run claims its row with a conditional write, so two invocations of the
daily schedule (EventBridge delivers at least once) never both run a task.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError
from pynamodb.models import Model

from .base import TableMeta, UTCDateTime, table


class TaskRun(Model):
    class Meta(TableMeta):
        table_name = table("task-runs")

    name = UnicodeAttribute(hash_key=True)
    last_run_at = UTCDateTime()


def last_run(name: str) -> datetime | None:
    try:
        return TaskRun.get(name, consistent_read=True).last_run_at
    except DoesNotExist:
        return None


def claim(name: str, *, now: datetime, min_interval: timedelta) -> tuple[bool, datetime | None]:
    """Record a run of ``name`` at ``now`` unless one was recorded less than ``min_interval`` ago.

    Returns whether the caller may run the task, and the previous run time (None if never).
    """
    previous = last_run(name)
    if previous is not None and now - previous < min_interval:
        return False, previous
    unchanged = TaskRun.last_run_at.does_not_exist() if previous is None else TaskRun.last_run_at == previous
    try:
        TaskRun(name, last_run_at=now).save(condition=unchanged)
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False, previous  # another invocation claimed it first
        raise
    return True, previous


def release(name: str, *, previous: datetime | None, claimed: datetime) -> None:
    """Undo a claim after the task failed, so the next invocation may try again."""
    try:
        if previous is None:
            TaskRun(name).delete(condition=TaskRun.last_run_at == claimed)
        else:
            TaskRun(name, last_run_at=previous).save(condition=TaskRun.last_run_at == claimed)
    except (PutError, DeleteError):  # someone else ran it meanwhile; their record stands
        pass
