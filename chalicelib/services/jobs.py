"""Jobs (spec §3.5, §5): submit, list, inspect, abort, delete, download; retention; uploads.

Audio and transcripts live in S3 (``storage``); the job row carries a copy of its settings and,
once assigned, of its runner's data, so listing jobs never joins other tables except to check
whether the runners of assigned jobs are still online (one BatchGetItem).
"""
from __future__ import annotations

import base64
import json
import logging
import math
import os
from datetime import timedelta
from typing import Any, Iterable
from urllib.parse import quote, unquote

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from .. import errors, storage
from ..schemas.jobs import (
    CountQuery, GetQuery, JobInfoResponse, JobSortKey, JobStatus, UploadPartsResponse, UploadPartUrl,
    UploadRequest, UploadResponse, settings_from_stored,
)
from ..settings import get_settings
from ..store import jobs as store
from ..store import runners as runner_store
from ..store.base import now
from ..store.counters import JOB, Counter, allocate
from ..store.jobs import QUEUED, Job
from ..store.runners import Runner
from . import events, job_settings, runners

log = logging.getLogger("wisp.jobs")

# Lambda takes at most 6 MB of request payload, and API Gateway base64-encodes binary bodies.
MAX_INLINE_BYTES = 4_500_000
# Lambda answers at most 6 MB, and Wisp's responses are base64-encoded binary as well.
MAX_INLINE_RESPONSE_BYTES = 4_400_000
UPLOAD_EXTENSION = "POST /api/wisp/uploads"
TRANSCRIPT_URL_EXTENSION = "GET /api/wisp/jobs/{job_id}/transcript_url"
MIN_PART_SIZE = 16 * 1024 * 1024
MAX_PARTS = 10_000
ENV_MAX_UPLOAD = "WISP_MAX_UPLOAD_BYTES"
DEFAULT_MAX_UPLOAD = 50 * 1024 ** 3

FINISHED_STEPS = {JobStatus.success, JobStatus.failed, JobStatus.downloaded}


def max_upload_bytes() -> int:
    """Largest direct upload accepted (``WISP_MAX_UPLOAD_BYTES``, default 50 GiB)."""
    return int(os.environ.get(ENV_MAX_UPLOAD) or DEFAULT_MAX_UPLOAD)


def is_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split("/", 1)[0].strip().lower() in ("audio", "video") and "/" in content_type


# Part types that say nothing about the file: curl -F labels every file it does not know by its
# extension (.wav, .mp3, .m4a, ...) application/octet-stream, and some clients send no type at all.
_UNLABELLED = {"", "application/octet-stream", "binary/octet-stream"}
SNIFF_BYTES = 8192  # what filetype reads at most


def upload_media_type(declared: str | None, data: bytes) -> str:
    """The audio/* or video/* type of an uploaded file; 415 when it is neither.

    An audio/video part type is taken as sent. A part without a useful type is judged by its
    first bytes (magic numbers), so ``curl -F audio_file=@talk.wav`` works; any other declared
    type (text/plain, image/png, ...) is a 415 as upstream answers (spec §3.5)."""
    if is_media_type(declared):
        return str(declared)
    label = (declared or "").split(";", 1)[0].strip().lower()
    if label not in _UNLABELLED:
        raise errors.UnsupportedMediaType(
            f"The uploaded file must be audio or video, but its part says {label}; send it as audio/* or video/*")
    import filetype  # only here: most uploads are labelled

    kind = filetype.guess(data[:SNIFF_BYTES])
    if kind is not None and is_media_type(kind.mime):
        return str(kind.mime)
    found = f"looks like {kind.mime}" if kind is not None else "is no audio or video format we recognise"
    raise errors.UnsupportedMediaType(
        f"The uploaded file must be audio or video: its part has no media type ({label or 'none'}) and its "
        f"content {found}")


# ------------------------------------------------------------------------------------------
# Status (spec §5.2)
# ------------------------------------------------------------------------------------------


def _live_runner(job: Job, found: dict[str, Runner]) -> Runner | None:
    runner = found.get(job.runner_key) if job.runner_key else None
    if runners.is_live(runner) and runner is not None and runner.job_id == job.id:
        return runner
    return None


def step_of(job: Job, live: Runner | None) -> JobStatus:
    if job.downloaded is True:
        return JobStatus.downloaded
    if job.downloaded is False:
        return JobStatus.success
    if job.error_msg is not None:
        return JobStatus.failed
    if job.aborting:
        return JobStatus.aborting
    if live is not None:
        return JobStatus.runner_in_progress if live.in_process else JobStatus.runner_assigned
    if job.queue == QUEUED or job.runner_key:
        return JobStatus.pending_runner  # a job whose runner expired waits for the sweeper
    return JobStatus.not_queued


def to_info(job: Job, live: Runner | None) -> JobInfoResponse:
    step = step_of(job, live)
    if step in (JobStatus.success, JobStatus.downloaded):
        progress = 100.0
    elif step is JobStatus.aborting:
        progress = float(live.progress or 0) if live is not None else 100.0
    elif live is not None:
        progress = float(live.progress or 0)
    else:
        progress = 0.0
    show_runner = job.finish_timestamp is not None or live is not None
    return JobInfoResponse(
        id=int(job.id), progress=max(0.0, min(100.0, progress)), abort=bool(job.aborting),
        creation_timestamp=job.creation_timestamp, file_name=job.file_name, finish_timestamp=job.finish_timestamp,
        runner_name=job.runner_name if show_runner else None,
        runner_id=int(job.runner_id) if show_runner and job.runner_id is not None else None,
        runner_version=job.runner_version if show_runner else None,
        runner_git_hash=job.runner_git_hash if show_runner else None,
        runner_source_code_url=job.runner_source_code_url if show_runner else None,
        downloaded=job.downloaded, error_msg=job.error_msg,
        settings=settings_from_stored(job.settings), step=step,
    )


def _mine(user_id: int, job_ids: Iterable[int]) -> list[Job]:
    return [j for j in store.get_many(list(job_ids)) if int(j.user_id) == user_id]


def _with_runners(jobs: list[Job]) -> list[tuple[Job, Runner | None]]:
    found = runner_store.get_many([j.runner_key for j in jobs if j.runner_key and j.finish_timestamp is None])
    return [(j, _live_runner(j, found)) for j in jobs]


# ------------------------------------------------------------------------------------------
# Submitting
# ------------------------------------------------------------------------------------------


def submit_job(*, user_id: int, file_name: str, content_type: str | None, data: bytes,
               settings_id: int | None, has_default_settings: bool | None = None) -> int:
    """Store the audio, queue the job, tell the owner, try to assign; returns the job id.

    ``has_default_settings``: the owner row's flag (False spares reading the default pointer)."""
    media_type = upload_media_type(content_type, data)
    resolved = job_settings.resolve_for_job(user_id, settings_id, has_default=has_default_settings)
    ids = allocate(JOB)
    key = storage.audio_key(int(ids.value))
    storage.put(key, data, content_type=media_type)
    return _create(ids, user_id=user_id, file_name=file_name, audio_key=key, resolved=resolved)


def _create(ids: Counter, *, user_id: int, file_name: str, audio_key: str, resolved: job_settings.Resolved) -> int:
    """Write the job whose id ``ids`` (the job counter) just handed out; returns the id."""
    job_id = int(ids.value)
    job = Job(job_id, user_id=user_id, file_name=file_name, creation_timestamp=now(),
              job_settings_id=resolved.settings_id, settings=resolved.settings,
              email_notification=resolved.email_notification, audio_key=audio_key, queue=QUEUED)
    runners.place_new_job(job, queue_generation=ids.generation_or_zero)
    return job_id


# ------------------------------------------------------------------------------------------
# Listing
# ------------------------------------------------------------------------------------------


def _filtered(user_id: int, exclude_finished: bool, exclude_downloaded: bool) -> list[Job]:
    jobs = store.of_user(user_id)
    if exclude_finished:
        return [j for j in jobs if j.finish_timestamp is None]
    if exclude_downloaded:
        return [j for j in jobs if j.downloaded is not True]
    return jobs


def count(user_id: int, query: CountQuery) -> int:
    return len(_filtered(user_id, query.exclude_finished, query.exclude_downloaded))


def get_ids(user_id: int, query: GetQuery) -> list[int]:
    """Job ids at sorted positions start_index..end_index inclusive."""
    jobs = _filtered(user_id, query.exclude_finished, query.exclude_downloaded)
    if query.sort_key is JobSortKey.filename:
        jobs.sort(key=lambda j: (j.file_name, int(j.id)), reverse=query.descending)
    else:
        jobs.sort(key=lambda j: (j.creation_timestamp, int(j.id)), reverse=query.descending)
    start = max(0, query.start_index)
    if query.end_index < start:
        return []
    return [int(j.id) for j in jobs[start:query.end_index + 1]]


def info(user_id: int, job_ids: list[int]) -> list[JobInfoResponse]:
    """Info for the caller's jobs among ``job_ids``; others are silently left out."""
    return [to_info(job, live) for job, live in _with_runners(_mine(user_id, job_ids))]


# ------------------------------------------------------------------------------------------
# Aborting
# ------------------------------------------------------------------------------------------


def abort(user_id: int, job_ids: list[int]) -> str:
    """Abort the caller's jobs; 400 (nothing changed) if any is finished or already aborting."""
    pairs = _with_runners(_mine(user_id, job_ids))
    for job, live in pairs:
        if step_of(job, live) in FINISHED_STEPS | {JobStatus.aborting}:
            raise errors.BadRequest(f"Job {job.id} is already finished or being aborted")
    for job, _live in pairs:
        _abort_one(job)
    return "Success"


def _abort_one(job: Job) -> None:
    for _attempt in range(5):
        if job.finish_timestamp is not None or job.aborting:
            return
        if _try_abort(job):
            if job.audio_key:
                storage.delete([job.audio_key])
            return
        try:
            job = Job.get(int(job.id), consistent_read=True)
        except DoesNotExist:
            return
    raise errors.ServiceUnavailable()


def _try_abort(job: Job) -> bool:
    """One conditional write (with its ``job_updated``); False if the job changed hands meanwhile
    (caller re-reads)."""
    key = job.runner_key
    announced = (int(job.user_id), events.JOB_UPDATED, int(job.id))
    if not key:
        # pending (or not queued): take it out of the queue and fail it at once
        try:
            events.commit(lambda tx: tx.update(
                Job(job.id), actions=store.failed_actions(runners.ABORTED),
                condition=Job.runner_key.does_not_exist() & Job.finish_timestamp.does_not_exist()), announced,
                let_go=[(int(job.user_id), int(job.id), events.QUEUE)])
        except TransactWriteError:
            return False
        return True
    runner = runner_store.get(key)
    held = runner is not None and runner.job_id == job.id
    job_cond = (Job.runner_key == key) & Job.finish_timestamp.does_not_exist()

    working = held and runners.is_live(runner) and runner.in_process  # it keeps the job until its result

    def build(tx: Any) -> None:
        if working:
            # the runner is working on it: it learns of the abort with its next heartbeat
            tx.update(Job(job.id), actions=[Job.aborting.set(True), Job.audio_key.remove()], condition=job_cond)
            tx.update(Runner(key), actions=[Runner.abort.set(True)],
                      condition=(Runner.job_id == job.id) & (Runner.in_process == True))  # noqa: E712
        else:
            # assigned but not started (or its runner is gone): unassign and fail it directly
            clear = [Job.runner_key.remove()] + [f.remove() for f in store.runner_fields()]
            tx.update(Job(job.id), actions=clear + store.failed_actions(runners.ABORTED), condition=job_cond)
            if held:
                cond = Runner.job_id == job.id
                if runners.is_live(runner):
                    cond = cond & (Runner.in_process.does_not_exist() | (Runner.in_process == False))  # noqa: E712
                tx.update(Runner(key), actions=[f.remove() for f in runner_store.job_fields()], condition=cond)

    try:
        events.commit(build, announced, let_go=[] if working else [(int(job.user_id), int(job.id), str(key))])
    except TransactWriteError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# Deleting
# ------------------------------------------------------------------------------------------


def delete(user_id: int, job_ids: list[int]) -> str:
    """Delete finished jobs with their files; 400 naming the first unfinished one."""
    jobs = _mine(user_id, job_ids)
    for job in jobs:
        if job.finish_timestamp is None:
            raise errors.BadRequest(f"Job {job.id} is not finished yet; abort it before deleting it")
    _delete_jobs(user_id, jobs)
    for job_id in dict.fromkeys(job_ids):
        events.publish(user_id, events.JOB_DELETED, int(job_id))
    return "Success"


def _objects_of(job: Job) -> list[str]:
    keys = storage.transcript_keys(int(job.id)) if job.has_transcript else []
    if job.audio_key:
        keys.append(job.audio_key)
    return keys


def _delete_jobs(user_id: int, jobs: list[Job]) -> None:
    """Rows, S3 objects, and settings records nothing references any more."""
    if not jobs:
        return
    storage.delete([k for j in jobs for k in _objects_of(j)])
    with Job.batch_write() as batch:
        for job in jobs:
            batch.delete(job)
    gone = {int(j.id) for j in jobs}
    candidates = {int(j.job_settings_id) for j in jobs if j.job_settings_id is not None}
    if candidates:
        referenced = {int(j.job_settings_id) for j in store.of_user(user_id)
                      if int(j.id) not in gone and j.job_settings_id is not None}
        job_settings.delete_unreferenced(user_id, candidates, referenced)


def delete_all_of_user(user_id: int) -> None:
    """Account deletion: every job of the user (running ones are taken from their runners), its
    files and its settings records."""
    jobs = store.of_user(user_id)
    for job in jobs:
        if job.finish_timestamp is None and job.runner_key:
            _detach_from_runner(job)
    for start in range(0, len(jobs), 25):
        chunk = jobs[start:start + 25]
        storage.delete([k for j in chunk for k in _objects_of(j)] + [storage.audio_key(int(j.id)) for j in chunk])
        with Job.batch_write() as batch:
            for job in chunk:
                batch.delete(job)
    job_settings.delete_all_of_user(user_id)


def _detach_from_runner(job: Job) -> None:
    runner = runner_store.get(str(job.runner_key))
    if runner is None or runner.job_id != job.id:
        return
    try:
        if runner.in_process:
            # tell it to stop; its error report then finds no job and just frees the runner
            runner.update(actions=[Runner.abort.set(True)], condition=Runner.job_id == job.id)
        else:
            runner.update(actions=[f.remove() for f in runner_store.job_fields()],
                          condition=(Runner.job_id == job.id)
                          & (Runner.in_process.does_not_exist() | (Runner.in_process == False)))  # noqa: E712
    except UpdateError as exc:
        if not runners._conditional(exc):
            raise


# ------------------------------------------------------------------------------------------
# Transcripts
# ------------------------------------------------------------------------------------------

_NO_TRANSCRIPT = "This job does not exist, is not yours, or has no transcript"


def _mark_downloaded(user_id: int, job_id: int) -> None:
    """Set downloaded (the first download sends job_updated, in the same transaction); 400 unless
    the job is the caller's and succeeded."""
    try:
        events.commit(lambda tx: tx.update(Job(job_id), actions=[Job.downloaded.set(True)],
                                           condition=(Job.user_id == user_id) & (Job.downloaded == False)),  # noqa: E712
                      (user_id, events.JOB_UPDATED, job_id))
    except TransactWriteError:
        found = _owned(user_id, job_id)
        if found is None or found.downloaded is not True:
            raise errors.BadRequest(_NO_TRANSCRIPT) from None


def _owned(user_id: int, job_id: int) -> Job | None:
    try:
        job = Job.get(job_id, consistent_read=True)
    except DoesNotExist:
        return None
    return job if int(job.user_id) == user_id else None


def download_transcript(user_id: int, job_id: int, transcript_type: str) -> str:
    """The transcript text (the route sends it as a JSON string); marks the job downloaded."""
    try:
        found = storage.get(storage.transcript_key(job_id, transcript_type), max_bytes=MAX_INLINE_RESPONSE_BYTES)
        text = found.data.decode("utf-8")
        if len(json.dumps(text)) > MAX_INLINE_RESPONSE_BYTES:
            raise storage.ObjectTooLarge(len(found.data))
    except storage.ObjectMissing:
        raise errors.BadRequest(_NO_TRANSCRIPT) from None
    except storage.ObjectTooLarge as exc:
        owned = _owned(user_id, job_id)
        if owned is None or owned.downloaded is None:
            raise errors.BadRequest(_NO_TRANSCRIPT) from None
        raise errors.PayloadTooLarge(
            f"This transcript ({exc.size} bytes) is too large to download here; use the Wisp extension "
            f"{TRANSCRIPT_URL_EXTENSION}?transcript_type={transcript_type} (returns a pre-signed URL)"
        ) from None
    _mark_downloaded(user_id, job_id)
    return text


def transcript_url(user_id: int, job_id: int, transcript_type: str) -> str:
    """Wisp extension: a pre-signed GET for one transcript file; marks the job downloaded."""
    job = _owned(user_id, job_id)
    if job is None or job.downloaded is None:
        raise errors.BadRequest(_NO_TRANSCRIPT)
    _mark_downloaded(user_id, job_id)
    media, extension = storage.TRANSCRIPT_MEDIA[transcript_type]
    stem = job.file_name.rsplit(".", 1)[0] if "." in (job.file_name or "") else (job.file_name or f"job-{job_id}")
    return storage.presigned_get(storage.transcript_key(job_id, transcript_type),
                                 file_name=f"{stem}.{extension}", content_type=media)


# ------------------------------------------------------------------------------------------
# Retention (spec §11.3)
# ------------------------------------------------------------------------------------------


def apply_retention() -> int:
    """Delete jobs finished more than ``finished_job_retention_in_days`` ago; returns how many."""
    days = get_settings().cleanup.finished_job_retention_in_days
    if not days:
        return 0
    ids = store.finished_before(now() - timedelta(days=days))
    by_user: dict[int, list[Job]] = {}
    for job in store.get_many(ids):
        if job.finish_timestamp is not None:
            by_user.setdefault(int(job.user_id), []).append(job)
    for user_id, jobs in by_user.items():
        _delete_jobs(user_id, jobs)
        events.publish_many(user_id, events.JOB_DELETED, [int(job.id) for job in jobs])
    deleted = sum(len(v) for v in by_user.values())
    log.info("job retention: deleted %d jobs finished more than %d days ago", deleted, days)
    return deleted


# ------------------------------------------------------------------------------------------
# Direct uploads (Wisp extension): pre-signed S3 multipart uploads, resumable
# ------------------------------------------------------------------------------------------


def _upload_signature(user_id: int, raw: bytes) -> str:
    import hashlib
    import hmac

    mac = hmac.new(get_settings().secret_key, b"wisp-upload:%d:" % user_id + raw, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def _encode_upload_id(user_id: int, suffix: str, s3_id: str, size: int, part_size: int) -> str:
    """An opaque id naming the S3 upload, signed for its owner (S3 needs the key with the id)."""
    raw = json.dumps([suffix, s3_id, size, part_size], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + _upload_signature(user_id, raw)


def _decode_upload_id(user_id: int, upload_id: str) -> tuple[str, str, int, int]:
    import hmac

    try:
        encoded, _, signature = upload_id.partition(".")
        raw = base64.urlsafe_b64decode((encoded + "=" * (-len(encoded) % 4)).encode())
        if not hmac.compare_digest(signature, _upload_signature(user_id, raw)):
            raise ValueError
        suffix, s3_id, size, part_size = json.loads(raw)
        if not (isinstance(suffix, str) and suffix.isalnum() and isinstance(s3_id, str)):
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise errors.BadRequest("Unknown upload") from None
    return storage.upload_prefix(user_id) + suffix, s3_id, int(size), int(part_size)


def _part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


def start_upload(user_id: int, request: UploadRequest) -> UploadResponse:
    """Start a pre-signed multipart upload straight to S3 (files far beyond Lambda's limits)."""
    if not is_media_type(request.content_type):
        raise errors.UnsupportedMediaType("The file must have an audio/* or video/* content type")
    if request.size > max_upload_bytes():
        raise errors.PayloadTooLarge(f"Files may be at most {max_upload_bytes()} bytes")
    mib = 1024 * 1024
    part_size = max(MIN_PART_SIZE, math.ceil(request.size / MAX_PARTS / mib) * mib)
    key = storage.new_upload_key(user_id)
    s3_id = storage.create_multipart(key, content_type=request.content_type,
                                     metadata={"file-name": quote(request.file_name, safe="")})
    upload_id = _encode_upload_id(user_id, key.rsplit("/", 1)[1], s3_id, request.size, part_size)
    parts = [UploadPartUrl(part_number=n, url=storage.presigned_part(key, s3_id, n))
             for n in range(1, _part_count(request.size, part_size) + 1)]
    return UploadResponse(upload_id=upload_id, key=key, part_size=part_size, parts=parts)


def upload_parts(user_id: int, upload_id: str) -> UploadPartsResponse:
    """Resume: the parts already uploaded, and fresh URLs for the missing ones."""
    key, s3_id, size, part_size = _decode_upload_id(user_id, upload_id)
    try:
        uploaded = storage.list_parts(key, s3_id)
    except storage.ObjectMissing:
        raise errors.BadRequest("Unknown upload") from None
    done = {p["part_number"] for p in uploaded}
    missing = [UploadPartUrl(part_number=n, url=storage.presigned_part(key, s3_id, n))
               for n in range(1, _part_count(size, part_size) + 1) if n not in done]
    return UploadPartsResponse(upload_id=upload_id, key=key, part_size=part_size, uploaded=uploaded, parts=missing)


def complete_upload(user_id: int, upload_id: str, parts: list[tuple[int, str]], settings_id: int | None,
                    has_default_settings: bool | None = None) -> int:
    """Finish the upload, check the stored object, and create the job; returns its id."""
    key, s3_id, _size, _part = _decode_upload_id(user_id, upload_id)
    # 400 before anything is final
    resolved = job_settings.resolve_for_job(user_id, settings_id, has_default=has_default_settings)
    try:
        storage.complete_multipart(key, s3_id, parts)
    except storage.ObjectMissing:
        raise errors.BadRequest("Unknown upload") from None
    except Exception as exc:  # noqa: BLE001 - S3 rejects wrong ETags/part lists with a ClientError
        if getattr(exc, "response", None) is None:
            raise
        raise errors.BadRequest(f"S3 refused to complete the upload: {exc}") from None
    stored = storage.head(key)
    if stored.size > max_upload_bytes():
        storage.delete([key])
        raise errors.PayloadTooLarge(f"Files may be at most {max_upload_bytes()} bytes")
    if not is_media_type(stored.content_type):
        storage.delete([key])
        raise errors.UnsupportedMediaType("The file must have an audio/* or video/* content type")
    file_name = unquote(stored.metadata.get("file-name", "")) or "upload"
    return _create(allocate(JOB), user_id=user_id, file_name=file_name, audio_key=key, resolved=resolved)
