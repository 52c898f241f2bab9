"""The bodies of the daily tasks (spec §11): token and audio cleanup, user retention.

Each reads a whole table with a Scan: they run once a day, off every request path, and a Scan
of the tokens or users table costs a fraction of a cent even for large instances.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from .. import aws, mail, storage
from ..settings import environment, get_settings
from ..store.jobs import Job
from ..store.tokens import Token
from ..store.users import User, scan_users

log = logging.getLogger("wisp.maintenance")

AUDIO_PREFIX = "audio/"
RESULT_PREFIX = "results/"
TRANSCRIPT_PREFIX = "transcripts/"
UPLOAD_PREFIX = "uploads/"
ORPHAN_MIN_AGE = timedelta(days=1)  # younger audio may belong to a job whose row is being written
STALE_UPLOAD_AGE = timedelta(days=2)  # an unfinished direct upload is resumable this long (the bucket's rule)
WARNING_DAYS = (30, 7)  # deletion warnings this many days before a user's deletion
_BATCH_GET = 100  # DynamoDB BatchGetItem limit


# ------------------------------------------------------------------------------------------
# Tokens
# ------------------------------------------------------------------------------------------


def tokens_by_user() -> dict[int, list[Token]]:
    found: dict[int, list[Token]] = defaultdict(list)
    for token in Token.scan():
        found[int(token.user_id)].append(token)
    return found


def _last_used(tokens: Iterable[Token]) -> datetime | None:
    return max((t.last_usage for t in tokens if t.last_usage is not None), default=None)


def delete_expired_sessions(*, now: datetime) -> int:
    """Delete expired session tokens, except each user's most recently used token (whatever its
    kind), which is kept so that user retention can still tell when the user was last active."""
    doomed: list[Token] = []
    for tokens in tokens_by_user().values():
        keep = max(tokens, key=lambda t: (t.last_usage or datetime.min.replace(tzinfo=now.tzinfo), int(t.id)))
        doomed.extend(t for t in tokens if t is not keep and not t.explicit
                      and t.expires_at is not None and t.expires_at <= now)
    with Token.batch_write() as batch:
        for token in doomed:
            batch.delete(token)
    return len(doomed)


# ------------------------------------------------------------------------------------------
# Audio objects
# ------------------------------------------------------------------------------------------


def _old_audio_keys(*, now: datetime) -> list[str]:
    s3 = aws.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=environment().bucket, Prefix=AUDIO_PREFIX):
        keys.extend(item["Key"] for item in page.get("Contents", []) if now - item["LastModified"] >= ORPHAN_MIN_AGE)
    return keys


def delete_orphaned_audio(*, now: datetime) -> int:
    """The daily storage sweep: whatever a crash (or a runner that never came back) left in the
    bucket. Audio no job refers to, result uploads and transcripts of finished or deleted jobs,
    uploaded files no job refers to, and unfinished multipart uploads that are stale or whose
    user is gone. Returns how many objects and uploads went. Deletion removes everything at once
    (``jobs.delete_all_of_user``, ``jobs.delete``); this catches what a crash in between left,
    and the bucket's lifecycle rule (incomplete multipart uploads, 2 days) is the last net."""
    return (_delete_unreferenced_audio(now=now) + delete_orphaned_results(now=now)
            + delete_orphaned_uploads(now=now))


def _delete_unreferenced_audio(*, now: datetime) -> int:
    """Audio objects that no job refers to any more (the job is gone, or finished and should have
    dropped its audio). Objects younger than a day are left alone."""
    keys = _old_audio_keys(now=now)
    wanted: dict[int, str] = {}
    orphans = []
    for key in keys:
        suffix = key[len(AUDIO_PREFIX):]
        if suffix.isdigit():
            wanted[int(suffix)] = key
        else:
            orphans.append(key)
    ids = list(wanted)
    referenced = set()
    for start in range(0, len(ids), _BATCH_GET):
        for job in Job.batch_get(ids[start:start + _BATCH_GET], attributes_to_get=["id", "audio_key"]):
            if job.audio_key:
                referenced.add(job.audio_key)
    orphans.extend(key for key in wanted.values() if key not in referenced)
    storage.delete(orphans)
    return len(orphans)


def _job_id_in(key: str, prefix: str) -> int | None:
    head = key[len(prefix):].split("/", 1)[0]
    return int(head) if head.isdigit() else None


def delete_orphaned_results(*, now: datetime) -> int:
    """Objects under ``results/<job>/`` and ``transcripts/<job>/`` older than a day whose job is
    gone, and result uploads of finished jobs (a runner that uploaded and never submitted, or a
    late runner). A finished job's own stored result is turned into its transcript files first,
    should a crash have kept them from being written."""
    from ..store import jobs as job_store
    from . import results

    listed = [(o.key, prefix) for prefix in (RESULT_PREFIX, TRANSCRIPT_PREFIX)
              for o in storage.list_objects(prefix) if now - o.last_modified >= ORPHAN_MIN_AGE]
    ids = {job_id for key, prefix in listed if (job_id := _job_id_in(key, prefix)) is not None}
    found = {j.id: j for start in range(0, len(ids), _BATCH_GET)
             for j in job_store.get_many(sorted(ids)[start:start + _BATCH_GET])}
    doomed = []
    for key, prefix in listed:
        job = found.get(_job_id_in(key, prefix) or -1)
        if job is None:
            doomed.append(key)
        elif prefix == RESULT_PREFIX and job.finish_timestamp is not None:
            if key == job.result_key:
                results.ensure_published(job)
            doomed.append(key)
    storage.delete(doomed)
    return len(doomed)


def delete_orphaned_uploads(*, now: datetime) -> int:
    """Direct uploads: unfinished ones older than ``STALE_UPLOAD_AGE`` or of users that are gone
    (aborted: S3 drops their parts), and completed files older than a day that no job of their
    user refers to (a crash between completing the upload and writing the job)."""
    from ..store import jobs as job_store

    pending = storage.multipart_uploads(UPLOAD_PREFIX)
    objects = [o for o in storage.list_objects(UPLOAD_PREFIX) if now - o.last_modified >= ORPHAN_MIN_AGE]
    user_ids = {u for u in (_job_id_in(k, UPLOAD_PREFIX) for k in [p.key for p in pending] + [o.key for o in objects])
                if u is not None}
    existing = {int(u.id) for start in range(0, len(user_ids), _BATCH_GET)
                for u in User.batch_get(sorted(user_ids)[start:start + _BATCH_GET], attributes_to_get=["id"])}
    aborted = 0
    for upload in pending:
        if now - upload.initiated >= STALE_UPLOAD_AGE or _job_id_in(upload.key, UPLOAD_PREFIX) not in existing:
            storage.abort_multipart(upload.key, upload.upload_id)
            aborted += 1
    referenced = {j.audio_key for u in {_job_id_in(o.key, UPLOAD_PREFIX) for o in objects} & existing
                  for j in job_store.of_user(int(u or 0)) if j.audio_key}
    doomed = [o.key for o in objects if o.key not in referenced]
    storage.delete(doomed)
    return aborted + len(doomed)


# ------------------------------------------------------------------------------------------
# User retention
# ------------------------------------------------------------------------------------------


def apply_user_retention(*, now: datetime, since: datetime) -> tuple[int, int]:
    """Warn users who became due for a deletion warning since the last run, delete inactive users.

    A user's last activity is the newest ``last_usage`` of its tokens. Provisioned users and users
    without any token are left alone. A warning is due when the user's deletion is
    ``WARNING_DAYS`` away (counted from the start of the day's window, like upstream's windows of
    "between retention − 31 and retention − 30 days ago"); the mail names the days actually left,
    which differ only if the task has not run for a while. Returns (warned, deleted).
    """
    days = get_settings().cleanup.user_retention_in_days
    if not days:
        return 0, 0
    retention = timedelta(days=days)
    activity = {user_id: _last_used(tokens) for user_id, tokens in tokens_by_user().items()}
    warnings: dict[int, list[str]] = defaultdict(list)
    doomed: list[User] = []
    for user in scan_users():
        last = activity.get(int(user.id))
        if user.provision_number is not None or last is None:
            continue
        deletion = last + retention
        if deletion < now:
            doomed.append(user)
            continue
        # warnings whose moment fell into [since, now): consecutive runs tile time, so each is
        # sent once; after an outage both may be due, and the user still gets one mail
        due = [d for d in WARNING_DAYS if since <= deletion - timedelta(days=d + 1) < now]
        if due:
            warnings[math.floor((deletion - now) / timedelta(days=1))].append(user.email)
    for days_left, addresses in sorted(warnings.items()):
        mail.send_account_deletion_warning(addresses, days_left)
    if doomed:
        from . import accounts  # account deletion spans jobs, tokens and logins

        for user in doomed:
            log.info("user retention: deleting user %s, inactive since %s", user.id, activity.get(int(user.id)))
            accounts.delete_user(user)
    return sum(len(a) for a in warnings.values()), len(doomed)
