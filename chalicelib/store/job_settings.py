"""Job settings records (spec §4), one partition per user.

Row ``(user_id, id > 0)`` is an immutable settings record. Row ``(user_id, 0)`` is the user's
default pointer: it names the default record and carries a copy of its settings, so reading the
default is one GetItem and replacing it is one PutItem (last writer wins; never two defaults).
"""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from .base import TableMeta, table

DEFAULT_POINTER = 0


class JobSettings(Model):
    class Meta(TableMeta):
        table_name = table("job-settings")

    user_id = NumberAttribute(hash_key=True)
    id = NumberAttribute(range_key=True)  # 0 = the default pointer row
    settings = JSONAttribute()  # JobSettingsResponse as JSON
    default_id = NumberAttribute(null=True)  # pointer row only


def find(user_id: int, settings_id: int) -> JobSettings | None:
    if settings_id <= DEFAULT_POINTER:
        return None
    try:
        return JobSettings.get(user_id, settings_id)
    except DoesNotExist:
        return None


def default_of(user_id: int) -> JobSettings | None:
    """The user's default pointer row (its ``default_id`` and settings copy), or None."""
    try:
        return JobSettings.get(user_id, DEFAULT_POINTER)
    except DoesNotExist:
        return None


def all_of_user(user_id: int) -> list[JobSettings]:
    return list(JobSettings.query(user_id))


def count_of_user(user_id: int) -> int:
    """How many settings records the user has (the default pointer not counted): one COUNT Query."""
    return int(JobSettings.count(user_id, JobSettings.id > DEFAULT_POINTER))
