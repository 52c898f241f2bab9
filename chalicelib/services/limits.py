"""Per-user limits of the operator config (``limits`` in the config file, ``settings.LimitSettings``).

Each check raises 400 with a detail that names the limit. They are quotas, not rates: waiting
does not lift them, removing something does (an API token, an upload, a settings record), so a
429 with ``Retry-After`` would promise what waiting cannot keep. Queued jobs are limited inside the
job's creating transaction (``store.transact``, ``jobs.create_job``), where no extra request is
needed and concurrent submissions cannot both slip past the limit.
"""
from __future__ import annotations

from .. import errors
from ..settings import get_settings


def check_api_tokens(user_id: int) -> None:
    """Before a new API token: 400 when the user has ``limits.api_tokens_per_user`` of them."""
    from ..store.tokens import Token

    limit = get_settings().limits.api_tokens_per_user
    count = sum(1 for t in Token.by_user.query(user_id, attributes_to_get=["token_hash", "explicit"]) if t.explicit)
    if count >= limit:
        raise errors.BadRequest(
            f"You have {limit} API tokens, the most this server allows per user (limits.api_tokens_per_user); "
            "invalidate one you no longer use first")


def check_job_settings(user_id: int) -> None:
    """Before a new job settings record: 400 when the user has ``limits.job_settings_per_user``."""
    from ..store.job_settings import count_of_user

    limit = get_settings().limits.job_settings_per_user
    if count_of_user(user_id) >= limit and _forget_unused_settings(user_id) and count_of_user(user_id) < limit:
        return
    if count_of_user(user_id) >= limit:
        raise errors.BadRequest(
            f"You have {limit} stored job settings, the most this server allows per user "
            "(limits.job_settings_per_user) and all of them are in use; delete finished jobs to free theirs")


SETTINGS_GRACE = 10  # the user's newest records are spared: a frontend may be about to submit a job with one


def _forget_unused_settings(user_id: int) -> bool:
    """At the limit: delete the records no job uses (upstream has no route to delete them, and a
    frontend stores one per job submitted with custom settings), except the default and the
    newest few. True if any went."""
    from ..store import jobs as job_store
    from ..store.job_settings import DEFAULT_POINTER, all_of_user
    from . import job_settings

    records = sorted(int(r.id) for r in all_of_user(user_id) if int(r.id) != DEFAULT_POINTER)
    candidates = set(records[:-SETTINGS_GRACE])
    used = {j.job_settings_id for j in job_store.of_user(user_id) if j.job_settings_id is not None}
    if not candidates - used:
        return False
    job_settings.delete_unreferenced(user_id, candidates, used)
    return True
