"""Jobs (spec §3.5, §5): submit, list, inspect, abort, delete, download; retention; uploads.

Audio and transcripts live in S3 (``storage``); the job row carries a copy of its settings and,
once assigned, of its runner's data, so listing jobs never joins other tables except to check
whether the runners of assigned jobs are still online (one BatchGetItem).
"""
from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from typing import Iterable

from .. import errors, storage
from ..schemas.jobs import CountQuery, GetQuery, JobInfoResponse, JobSortKey, JobStatus, settings_from_stored
from ..settings import get_settings
from ..store import jobs as store
from ..store import lifecycle
from ..store import runners as runner_store
from ..store.base import now
from ..store.counters import JOB, allocate
from ..store.jobs import JobRecord
from ..store.lifecycle import NewJob
from ..store.transact import QueueFull
from ..store.runners import RunnerRecord
from . import assignment, job_settings, leases, results

log = logging.getLogger("wisp.jobs")

# Lambda takes at most 6 MB of request payload, and API Gateway base64-encodes binary bodies.
MAX_INLINE_BYTES = 4_500_000
# Lambda answers at most 6 MB, and Wisp's responses are base64-encoded binary as well.
MAX_INLINE_RESPONSE_BYTES = 4_400_000
UPLOAD_EXTENSION = "POST /api/wisp/uploads"
TRANSCRIPT_URL_EXTENSION = "GET /api/wisp/jobs/{job_id}/transcript_url"
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

    The part's type must be audio/video, or say nothing about the file (``curl -F`` labels
    most audio files application/octet-stream); any other declared type (text/plain,
    image/png, ...) is a 415 as upstream answers (spec §3.5). Then the content itself is judged by
    its first bytes (``content_problem``): empty files, images, documents, archives and text are
    415 here rather than failures on a runner. An unlabelled part needs content recognised as
    audio or video; a labelled one may be a format the sniffer does not know."""
    label = (declared or "").split(";", 1)[0].strip().lower()
    if not is_media_type(declared) and label not in _UNLABELLED:
        raise errors.UnsupportedMediaType(
            f"The uploaded file must be audio or video, but its part says {label}; send it as audio/* or video/*")
    problem = content_problem(data[:SNIFF_BYTES])
    if problem is not None:
        raise errors.UnsupportedMediaType(problem)
    if is_media_type(declared):
        return str(declared)
    import filetype

    kind = filetype.guess(data[:SNIFF_BYTES])
    if kind is not None and is_media_type(kind.mime):
        return str(kind.mime)
    raise errors.UnsupportedMediaType(
        f"The uploaded file must be audio or video: its part has no media type ({label or 'none'}) and its "
        "content is no audio or video format we recognise; send it as audio/* or video/*")


def content_problem(head: bytes) -> str | None:
    """Why a file whose first bytes are ``head`` is certainly not audio or video; None if it may be.

    Refused: empty files, content that ``filetype`` recognises as anything but audio/video
    (images, documents, archives, executables, fonts), and text. Unknown binary content passes:
    ``filetype`` knows the common containers only, and a runner's decoder knows many more."""
    if not head:
        return "The uploaded file is empty"
    import filetype  # only here: the cold start of every other route does not need it

    kind = filetype.guess(head)
    if kind is not None and not is_media_type(kind.mime):
        return f"The uploaded file must be audio or video, but its content is {kind.mime} ({kind.extension})"
    if kind is None and _is_text(head):
        return "The uploaded file must be audio or video, but it is text (no audio or video format)"
    return None


_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v")


def _is_text(head: bytes) -> bool:
    """UTF-8 text without control characters (a cut-off character at the end is fine); audio
    and video data has control bytes within the first few hundred bytes."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or exc.start < len(head) - 3:
            return False
        text = head[:exc.start].decode("utf-8")
    return all(ch.isprintable() or ord(ch) in _TEXT_CONTROLS for ch in text)


# ------------------------------------------------------------------------------------------
# Status (spec §5.2)
# ------------------------------------------------------------------------------------------


def _live_runner(job: JobRecord, found: dict[str, RunnerRecord]) -> RunnerRecord | None:
    runner = found.get(job.runner_key) if job.runner_key else None
    if runner is not None and leases.is_live(runner) and runner.job_id == job.id:
        return runner
    return None


def step_of(job: JobRecord, live: RunnerRecord | None) -> JobStatus:
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
    if job.is_queued or job.runner_key:
        return JobStatus.pending_runner  # a job whose runner expired waits for the sweeper
    return JobStatus.not_queued


def to_info(job: JobRecord, live: RunnerRecord | None) -> JobInfoResponse:
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
        id=job.id, progress=max(0.0, min(100.0, progress)), abort=bool(job.aborting),
        creation_timestamp=job.creation_timestamp, file_name=job.file_name, finish_timestamp=job.finish_timestamp,
        runner_name=job.runner_name if show_runner else None,
        runner_id=job.runner_id if show_runner else None,
        runner_version=job.runner_version if show_runner else None,
        runner_git_hash=job.runner_git_hash if show_runner else None,
        runner_source_code_url=job.runner_source_code_url if show_runner else None,
        downloaded=job.downloaded, error_msg=job.error_msg,
        settings=settings_from_stored(job.settings), step=step,
    )


def _mine(user_id: int, job_ids: Iterable[int]) -> list[JobRecord]:
    return [j for j in store.get_many(list(job_ids), consistent=True) if j.user_id == user_id]


def _with_runners(jobs: list[JobRecord]) -> list[tuple[JobRecord, RunnerRecord | None]]:
    """Each job with its live runner, if it has one, as one moment saw them.

    Job and runner rows are two reads. A job whose runner finished it (or lost it) between them
    would read as held by a runner that no longer holds it: "pending" with 0 % for a moment,
    between "in progress" and "success". Such jobs are read again, and the job row then is at
    least as new as the runner row, so a job's observed state only moves forward."""
    found = runner_store.get_many([j.runner_key for j in jobs if j.runner_key and j.finish_timestamp is None])
    pairs = [(j, _live_runner(j, found)) for j in jobs]
    for _attempt in range(3):
        skewed = [j.id for j, live in pairs if j.runner_key and j.finish_timestamp is None and live is None
                  and (found.get(j.runner_key) is None or found[j.runner_key].job_id != j.id)]
        if not skewed:
            break
        fresh = {j.id: j for j in store.get_many(skewed, consistent=True)}
        found.update(runner_store.get_many([j.runner_key for j in fresh.values()
                                            if j.runner_key and j.finish_timestamp is None]))
        pairs = [(fresh.get(j.id, j), _live_runner(fresh.get(j.id, j), found)) for j, _ in pairs]
    return pairs


# ------------------------------------------------------------------------------------------
# Submitting
# ------------------------------------------------------------------------------------------


def submit_job(*, user_id: int, file_name: str, content_type: str | None, data: bytes,
               settings_id: int | None, has_default_settings: bool | None = None) -> int:
    """Store the audio, queue the job, tell the owner, try to assign; returns the job id.

    ``has_default_settings``: the owner row's flag (False spares reading the default pointer)."""
    media_type = upload_media_type(content_type, data)
    resolved = job_settings.resolve_for_job(user_id, settings_id, has_default=has_default_settings)
    return create_job(user_id=user_id, file_name=file_name, audio_key=None, resolved=resolved,
                      audio=(data, media_type))


def create_job(*, user_id: int, file_name: str, audio_key: str | None, resolved: job_settings.Resolved,
               audio: tuple[bytes, str] | None = None) -> int:
    """Take the next job id and write the job (its ``audio``, if given, stored first); returns the id.

    The audio goes first (a runner may get the job the moment its row exists). If the job is not
    written, the audio is deleted again, whatever the job's audio is (``audio_key`` too), so a
    refused or failed submission leaves no object behind; a crash in between is the daily
    sweep's (``maintenance.delete_orphaned_audio``). 400 when the owner's queue is full."""
    ids = allocate(JOB)
    if audio is not None:
        audio_key = storage.audio_key(ids.value)
        storage.put(audio_key, audio[0], content_type=audio[1])
    job = NewJob(ids.value, user_id=user_id, file_name=file_name, settings_id=resolved.settings_id,
                 settings=resolved.settings, email_notification=resolved.email_notification,
                 audio_key=str(audio_key))
    try:
        assignment.place_new_job(job, queue_generation=ids.generation)
    except QueueFull as exc:
        storage.delete([str(audio_key)])
        raise errors.BadRequest(
            f"You have {exc.limit} jobs waiting for a runner, the most this server allows per user "
            "(limits.queued_jobs_per_user); submit more once some of them have started") from None
    except Exception:
        if store.get(ids.value) is None:  # the write may have landed before the failure (a timeout)
            storage.delete([str(audio_key)])
        raise
    return ids.value


# ------------------------------------------------------------------------------------------
# Listing
# ------------------------------------------------------------------------------------------


def _filtered(user_id: int, exclude_finished: bool, exclude_downloaded: bool) -> list[JobRecord]:
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
        jobs.sort(key=lambda j: (j.file_name, j.id), reverse=query.descending)
    else:
        jobs.sort(key=lambda j: (j.creation_timestamp, j.id), reverse=query.descending)
    start = max(0, query.start_index)
    if query.end_index < start:
        return []
    return [j.id for j in jobs[start:query.end_index + 1]]


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


def _abort_one(job: JobRecord) -> None:
    for _attempt in range(5):
        if job.finish_timestamp is not None or job.aborting:
            return
        if _try_abort(job):
            if job.audio_key:
                storage.delete([job.audio_key])
            return
        fresh = store.get(job.id)
        if fresh is None:
            return
        job = fresh
    raise errors.ServiceUnavailable()


def _try_abort(job: JobRecord) -> bool:
    """One transition; False if the job changed hands meanwhile (the caller reads it again)."""
    if not job.runner_key:
        return lifecycle.abort_unheld(job)  # pending (or not queued): out of the queue, failed at once
    runner = runner_store.get(job.runner_key)
    held = runner is not None and runner.job_id == job.id
    live = held and leases.is_live(runner)
    if live and runner is not None and runner.in_process:
        return lifecycle.abort_working(job, runner)  # it keeps the job until it reports the abort
    return lifecycle.abort_waiting(job, runner if held else None, runner_live=live)


# ------------------------------------------------------------------------------------------
# Deleting
# ------------------------------------------------------------------------------------------


def delete(user_id: int, job_ids: list[int]) -> str:
    """Delete finished jobs with their files; 400 naming the first unfinished one."""
    jobs = _mine(user_id, job_ids)
    for job in jobs:
        if job.finish_timestamp is None:
            raise errors.BadRequest(f"Job {job.id} is not finished yet; abort it before deleting it")
    _delete_jobs(user_id, jobs, announce=False)
    lifecycle.announce(user_id, lifecycle.JOB_DELETED, list(dict.fromkeys(job_ids)))  # every id asked for, as upstream
    return "Success"


def _objects_of(job: JobRecord) -> list[str]:
    """The keys of the job's objects (its stored result uploads are found by ``_remove_files``)."""
    held = job.handouts > 0 or job.has_transcript  # a runner had it: transcripts may exist
    keys = storage.transcript_keys(job.id) if held else []
    keys += [k for k in (job.audio_key, job.result_key, storage.audio_key(job.id)) if k]
    return keys


def _remove_files(jobs: list[JobRecord]) -> None:
    """Every object of the jobs: audio, transcripts, the stored result, and whatever runners put
    under ``results/<job>/`` through ``result_upload`` without submitting it (a crash, a lease
    that ran out). Only jobs a runner held can have those: one listing each, in parallel."""
    storage.delete([k for j in jobs for k in _objects_of(j)])
    storage.delete_prefixes([storage.result_prefix(j.id) for j in jobs if j.handouts > 0])


def _delete_jobs(user_id: int, jobs: list[JobRecord], *, announce: bool = True) -> None:
    """Rows (with their ``job_deleted``), S3 objects, and settings records nothing references any more."""
    if not jobs:
        return
    _remove_files(jobs)
    lifecycle.delete(jobs, announce=announce)
    gone = {j.id for j in jobs}
    candidates = {j.job_settings_id for j in jobs if j.job_settings_id is not None}
    if candidates:
        referenced = {j.job_settings_id for j in store.of_user(user_id)
                      if j.id not in gone and j.job_settings_id is not None}
        job_settings.delete_unreferenced(user_id, candidates, referenced)


def delete_all_of_user(user_id: int) -> None:
    """Account deletion: every job of the user (running ones are taken from their runners), its
    files, its unfinished direct uploads, its settings records and its event log."""
    jobs = store.of_user(user_id)
    for job in jobs:
        if job.finish_timestamp is None and job.runner_key:
            runner = runner_store.get(job.runner_key)
            if runner is not None and runner.job_id == job.id:
                lifecycle.stop_for_deletion(runner, job.id)
    for start in range(0, len(jobs), 25):
        chunk = jobs[start:start + 25]
        _remove_files(chunk)
        lifecycle.delete(chunk, announce=False)
    storage.delete_prefix(storage.upload_prefix(user_id), uploads=True)
    job_settings.delete_all_of_user(user_id)
    lifecycle.delete_log(user_id)


# ------------------------------------------------------------------------------------------
# Transcripts
# ------------------------------------------------------------------------------------------

_NO_TRANSCRIPT = "This job does not exist, is not yours, or has no transcript"


def _mark_downloaded(user_id: int, job_id: int) -> None:
    """Set downloaded (the first download sends job_updated, in the same transaction); 400 unless
    the job is the caller's and succeeded."""
    if not lifecycle.mark_downloaded(user_id, job_id):
        found = _owned(user_id, job_id)
        if found is None or found.downloaded is not True:
            raise errors.BadRequest(_NO_TRANSCRIPT)


def _owned(user_id: int, job_id: int) -> JobRecord | None:
    job = store.get(job_id)
    return job if job is not None and job.user_id == user_id else None


def _read_transcript(user_id: int, job_id: int, transcript_type: str) -> storage.StoredObject:
    """The transcript file; written from the job's stored result first if a crash left it unwritten."""
    key = storage.transcript_key(job_id, transcript_type)
    try:
        return storage.get(key, max_bytes=MAX_INLINE_RESPONSE_BYTES)
    except storage.ObjectMissing:
        owned = _owned(user_id, job_id)
        if owned is None or not results.ensure_published(owned):
            raise
    return storage.get(key, max_bytes=MAX_INLINE_RESPONSE_BYTES)


def download_transcript(user_id: int, job_id: int, transcript_type: str) -> str:
    """The transcript text (the route sends it as a JSON string); marks the job downloaded."""
    try:
        found = _read_transcript(user_id, job_id, transcript_type)
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
    by_user: dict[int, list[JobRecord]] = {}
    for job in store.get_many(ids):
        if job.finish_timestamp is not None:
            by_user.setdefault(job.user_id, []).append(job)
    for user_id, jobs in by_user.items():
        _delete_jobs(user_id, jobs)
    deleted = sum(len(v) for v in by_user.values())
    log.info("job retention: deleted %d jobs finished more than %d days ago", deleted, days)
    return deleted
