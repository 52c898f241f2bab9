"""Jobs router (spec §3.5): settings, submission, listing, abort, delete, transcript download."""
from __future__ import annotations

from .. import errors
from ..multipart_form import parse_multipart
from ..schemas.jobs import (
    Body_submit_job, CountQuery, DownloadQuery, GetQuery, InfoQuery, JobIds, JobInfoResponse,
    JobSettingsRequest, JobSettingsResponse, SubmitJobQuery, SubmitSettingsQuery,
)
from ..services import job_settings, jobs
from ._http import Call, Router

router = Router(__name__, prefix="/api/jobs", tag="jobs")


@router.route("/submit_settings", "POST", gate="user+V+T", query=SubmitSettingsQuery, body=JobSettingsRequest,
              response=int, errors={400: "The caller has as many settings records as this server allows"})
def submit_settings(call: Call) -> int:
    """Store a new job settings record and return its id.

    With ``is_new_default=true`` it also becomes the caller's default for jobs submitted without a
    ``job_settings_id``. Cross-field rules (English-only models, translate without alignment, ...)
    are 422 errors at ``["body"]``. Each user may store at most ``limits.job_settings_per_user``
    records (default 1000; 400 beyond it).
    """
    return job_settings.submit(call.principal.user.id, call.body, is_new_default=call.query.is_new_default)


@router.route("/default_settings", "GET", gate="user", response=JobSettingsResponse)
def default_settings(call: Call) -> JobSettingsResponse:
    """The caller's default job settings, or the application defaults if there are none."""
    return job_settings.default_settings(call.principal.user.id)


def _missing_audio_file() -> errors.ValidationFailed:
    return errors.ValidationFailed([{"type": "missing", "loc": ["body", "audio_file"], "msg": "Field required",
                                     "input": None}])


@router.route("/submit_job", "POST", gate="user+V+T", query=SubmitJobQuery, body=Body_submit_job,
              body_format="multipart", response=int,
              errors={400: "Unknown job_settings_id, a malformed multipart body, or the caller's queue is full",
                      413: "Request body over the Lambda limit: use the direct-upload extension",
                      415: "The file is not audio or video (by its part's type or by its content)"})
def submit_job(call: Call) -> int:
    """Submit a transcription job: multipart/form-data with the file in the part ``audio_file``.

    Without ``job_settings_id`` the caller's default settings apply (or the application defaults).
    The part's type must be ``audio/*`` or ``video/*``; a part labelled ``application/octet-stream``
    (as ``curl -F`` labels most audio files) or not labelled must have content recognisable as
    audio or video. Whatever the label, the content is checked by its first bytes: an empty file,
    an image, a document, an archive or text is 415. Bodies over 4,500,000 bytes (the Lambda
    payload limit) get 413; upload big files with the Wisp extension ``POST /api/wisp/uploads``.
    At most ``limits.queued_jobs_per_user`` (default 500) of a user's jobs may wait for a runner;
    a submission beyond it is 400. Returns the new job id.
    """
    raw = call.request.raw_body or b""
    if len(raw) > jobs.MAX_INLINE_BYTES:
        raise errors.PayloadTooLarge(
            f"The upload ({len(raw)} bytes) is larger than this route accepts ({jobs.MAX_INLINE_BYTES} bytes); "
            f"upload big files with the Wisp direct-upload extension {jobs.UPLOAD_EXTENSION}"
        )
    content_type = call.header("content-type") or ""
    if not content_type.lower().startswith("multipart/form-data"):
        raise _missing_audio_file()
    fields, files = parse_multipart(raw, content_type)
    part = files.get("audio_file")
    if part is None:
        if "audio_file" in fields:
            raise errors.ValidationFailed([{
                "type": "value_error", "loc": ["body", "audio_file"],
                "msg": "Value error, Expected UploadFile, received: <class 'str'>",
                "input": fields["audio_file"][:100], "ctx": {"error": {}}}])
        raise _missing_audio_file()
    if not part.filename:
        raise errors.BadRequest("The audio_file part must carry a filename")
    part_type = part.content_type if isinstance(part.content_type, str) else None
    user = call.principal.user
    return jobs.submit_job(user_id=user.id, file_name=part.filename, content_type=part_type, data=part.data,
                           settings_id=call.query.job_settings_id, has_default_settings=user.has_default_settings)


@router.route("/count", "GET", gate="user+V+T", query=CountQuery, response=int)
def count(call: Call) -> int:
    """How many of the caller's jobs pass the filter (unfinished only, or all but downloaded)."""
    return jobs.count(call.principal.user.id, call.query)


@router.route("/get", "GET", gate="user+V+T", query=GetQuery, response=list[int])
def get(call: Call) -> list[int]:
    """Ids of the caller's jobs at sorted positions ``start_index``..``end_index`` (inclusive)."""
    return jobs.get_ids(call.principal.user.id, call.query)


@router.route("/info", "GET", gate="user+V+T", query=InfoQuery, response=list[JobInfoResponse])
def info(call: Call) -> list[JobInfoResponse]:
    """Details of the caller's jobs among ``job_ids`` (repeat the key); others are left out.

    At most 1000 ids per request (422 beyond)."""
    return jobs.info(call.principal.user.id, call.query.job_ids)


@router.route("/abort", "POST", gate="user+V+T", body=JobIds, response=str,
              errors={400: "A job is already finished or being aborted"})
def abort(call: Call) -> str:
    """Abort the caller's jobs given as a JSON array of ids.

    Pending and not-yet-started jobs fail at once; jobs being processed become ``aborting`` until
    their runner reports back. 400 (nothing changed) if any of them is finished or aborting.
    At most 1000 ids per request (422 beyond).
    """
    return jobs.abort(call.principal.user.id, call.body)


@router.route("/delete", "DELETE", gate="user+V+T", body=JobIds, response=str,
              errors={400: "A job is not finished"})
def delete(call: Call) -> str:
    """Delete the caller's finished jobs (JSON array of ids) with their transcripts.

    400 naming the job if any of them is unfinished (nothing deleted then). Every object of a
    deleted job goes with it (audio, transcripts, result uploads). At most 1000 ids per request
    (422 beyond).
    """
    return jobs.delete(call.principal.user.id, call.body)


@router.route("/download_transcript", "GET", gate="user+V+T", query=DownloadQuery, response=str,
              errors={400: "No such job of the caller, or no transcript",
                      413: "Transcript over the Lambda limit: use the transcript_url extension"})
def download_transcript(call: Call) -> str:
    """The transcript of a succeeded job as a JSON string; marks the job as downloaded.

    Transcripts over the Lambda response limit get 413; fetch those with the Wisp extension
    ``GET /api/wisp/jobs/{job_id}/transcript_url``.
    """
    return jobs.download_transcript(call.principal.user.id, call.query.job_id, call.query.transcript_type.value)


# events route: see chalicelib/routes/job_events.py
