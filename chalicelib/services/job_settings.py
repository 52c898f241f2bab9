"""Job settings: immutable records per user, one of them optionally the user's default (spec §4)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError

from .. import errors
from ..schemas.jobs import JobSettingsRequest, JobSettingsResponse, application_defaults, settings_from_stored
from ..store import job_settings as store
from ..store.base import transact_write
from ..store.counters import next_id
from ..store.job_settings import DEFAULT_POINTER, JobSettings
from ..store.users import User


@dataclass
class Resolved:
    """The settings a new job runs with: the record id (None → app defaults) and a copy."""

    settings_id: int | None
    settings: dict[str, Any] | None

    @property
    def email_notification(self) -> bool:
        return bool(self.settings and self.settings.get("email_notification"))


def submit(user_id: int, request: JobSettingsRequest, *, is_new_default: bool) -> int:
    """Store a new immutable settings record; optionally make it the user's only default (400
    when the user has as many records as ``limits.job_settings_per_user`` allows)."""
    from . import limits

    limits.check_job_settings(user_id)
    settings_id = next_id("job_settings")
    data = request.to_response().model_dump(mode="json")
    record = JobSettings(user_id, settings_id, settings=data)
    if not is_new_default:
        record.save()
        return settings_id
    # one transaction: the record, the pointer that makes it the default (replacing the old one)
    # and the owner's flag that says a pointer exists
    try:
        with transact_write() as tx:
            tx.save(record)
            tx.save(JobSettings(user_id, DEFAULT_POINTER, settings=data, default_id=settings_id))
            tx.update(User(user_id), actions=[User.has_default_settings.set(True)], condition=User.id.exists())
    except TransactWriteError:
        raise errors.ServiceUnavailable() from None  # a concurrent change (or the account went away)
    return settings_id


def default_settings(user_id: int) -> JobSettingsResponse:
    """The user's default settings, or the application defaults."""
    pointer = store.default_of(user_id)
    return settings_from_stored(pointer.settings) if pointer else application_defaults()


def resolve_for_job(user_id: int, settings_id: int | None, *, has_default: bool | None = None) -> Resolved:
    """The settings a new job of ``user_id`` gets; 400 for a foreign or unknown settings id.

    ``has_default``: the user row's ``has_default_settings`` (False: skip reading the pointer)."""
    if settings_id is not None:
        record = store.find(user_id, settings_id)
        if record is None:
            raise errors.BadRequest(f"No job settings with id {settings_id} exist for this account")
        return Resolved(int(record.id), dict(record.settings))
    if has_default is False:
        return Resolved(None, None)
    pointer = store.default_of(user_id)
    if pointer is None or pointer.default_id is None:
        return Resolved(None, None)  # application defaults, resolved whenever read
    return Resolved(int(pointer.default_id), dict(pointer.settings))


def delete_unreferenced(user_id: int, candidates: set[int], still_referenced: set[int]) -> None:
    """Delete candidate records that no job references any more and that are not the default."""
    doomed = {c for c in candidates if c is not None} - still_referenced
    if not doomed:
        return
    pointer = store.default_of(user_id)
    if pointer is not None and pointer.default_id is not None:
        doomed.discard(int(pointer.default_id))
    with JobSettings.batch_write() as batch:
        for settings_id in doomed:
            batch.delete(JobSettings(user_id, settings_id))


def delete_all_of_user(user_id: int) -> None:
    with JobSettings.batch_write() as batch:
        for record in store.all_of_user(user_id):
            batch.delete(record)
