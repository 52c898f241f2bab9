"""Wisp extensions (not part of the Project-W API), all under ``/api/wisp``.

* Direct uploads: pre-signed, resumable S3 multipart uploads for files beyond Lambda's limits.
* Transcript URLs: pre-signed downloads for transcripts beyond Lambda's response limit.
* Runner extensions: audio by URL, results by pre-signed POST, and a long-poll for new jobs.
* Admin extensions: the list of runners with their state (the stock API can only create and
  invalidate them).
"""
from __future__ import annotations

from ..schemas.jobs import (
    CompleteUploadRequest, SubmitJobQuery, TranscriptUrlQuery, UploadPartsResponse, UploadRequest, UploadResponse,
    UrlResponse,
)
from ..schemas.runners import (
    HeartbeatResponse, ResultUploadResponse, RunnerInfoResponse, SessionQuery, SubmitUploadedResultRequest,
    WaitForJobQuery,
)
from ..services import admin, jobs, protocol, uploads
from ..services.runner_gate import RunnerGate
from ._http import Call, Router

router = Router(__name__, prefix="/api/wisp", tag="wisp")

MAX_RESULT_BYTES = 512 * 1024 * 1024  # JSON results uploaded through result_upload


@router.route("/uploads", "POST", gate="user+V+T", body=UploadRequest, response=UploadResponse, extension=True,
              errors={400: "The caller has as many unfinished uploads as this server allows",
                      413: "File larger than the configured maximum", 415: "Not audio/* or video/*"})
def start_upload(call: Call) -> UploadResponse:
    """Start a direct upload to S3 (for files too large for ``submit_job``).

    Send ``{file_name, content_type, size}`` with an ``audio/*`` or ``video/*`` content type;
    PUT each ``part_size`` slice of the file to its part URL and keep each response's ``ETag``,
    then call ``/uploads/{upload_id}/complete``. A user may have at most
    ``limits.open_uploads_per_user`` (default 20) unfinished uploads (400 beyond it); cancel one
    with ``DELETE /uploads/{upload_id}``.
    """
    return uploads.start_upload(call.principal.user.id, call.body)


@router.route("/uploads/{upload_id}/parts", "GET", gate="user+V+T", response=UploadPartsResponse, extension=True,
              errors={400: "Unknown upload"})
def upload_parts(call: Call, upload_id: str) -> UploadPartsResponse:
    """Resume an interrupted upload: the parts S3 already has, and new URLs for the others."""
    return uploads.upload_parts(call.principal.user.id, upload_id)


@router.route("/uploads/{upload_id}", "DELETE", gate="user+V+T", response=str, extension=True,
              errors={400: "Unknown upload"})
def cancel_upload(call: Call, upload_id: str) -> str:
    """Cancel an unfinished direct upload: S3 drops the parts uploaded so far.

    Unfinished uploads count against the per-user limit ``limits.open_uploads_per_user``
    (default 20); S3 drops those left alone after two days."""
    return uploads.cancel_upload(call.principal.user.id, upload_id)


@router.route("/uploads/{upload_id}/complete", "POST", gate="user+V+T", query=SubmitJobQuery,
              body=CompleteUploadRequest, response=int, extension=True,
              errors={400: "Unknown upload, wrong parts, unknown job_settings_id, or the caller's queue is full",
                      413: "File larger than the configured maximum", 415: "Not audio/* or video/*"})
def complete_upload(call: Call, upload_id: str) -> int:
    """Finish a direct upload and submit the job (same settings rules as ``submit_job``); returns its id.

    The stored file's first bytes are checked like ``submit_job``'s file: an empty file, an image,
    a document, an archive or text is 415 (and the file is deleted)."""
    parts = [(p.part_number, p.etag) for p in call.body.parts]
    user = call.principal.user
    return uploads.complete_upload(user.id, upload_id, parts, call.query.job_settings_id,
                                has_default_settings=user.has_default_settings)


@router.route("/jobs/{job_id}/transcript_url", "GET", gate="user+V+T", query=TranscriptUrlQuery,
              response=UrlResponse, extension=True, errors={400: "No such job of the caller, or no transcript"})
def transcript_url(call: Call, job_id: str) -> UrlResponse:
    """A pre-signed URL (1 hour) for one transcript file; marks the job as downloaded."""
    return UrlResponse(url=jobs.transcript_url(call.principal.user.id, _job_id(job_id),
                                               call.query.transcript_type.value))


def _job_id(raw: str) -> int:
    from .. import errors

    try:
        return int(raw)
    except ValueError:
        raise errors.ValidationFailed([{"type": "int_parsing", "loc": ["path", "job_id"],
                                        "msg": "Input should be a valid integer, unable to parse string as an integer",
                                        "input": raw}]) from None


# ------------------------------------------------------------------------------------------
# Runner extensions
# ------------------------------------------------------------------------------------------


@router.route("/runners/wait_for_job", "POST", gate="runner+S", query=WaitForJobQuery, response=HeartbeatResponse,
              extension=True)
def wait_for_job(call: Call) -> HeartbeatResponse:
    """Long-poll heartbeat: answers like ``heartbeat`` as soon as a job is assigned, or after ``timeout`` s.

    Keeps the runner online like a heartbeat (it does not store progress).
    """
    return protocol.wait_for_job(call.principal, call.query.timeout)


@router.route("/runners/audio_url", "POST", gate=RunnerGate(True, protocol.mark_processing), query=SessionQuery,
              response=UrlResponse, extension=True,
              errors={400: "No job assigned", 405: "The assigned job was aborted by the user"})
def audio_url(call: Call) -> UrlResponse:
    """A pre-signed GET for the assigned job's audio; marks the job as being processed."""
    return UrlResponse(url=protocol.audio_url(call.principal))


@router.route("/runners/result_upload", "POST", gate="runner+S", query=SessionQuery, response=ResultUploadResponse,
              extension=True, errors={400: "This runner is not processing a job"})
def result_upload(call: Call) -> ResultUploadResponse:
    """A pre-signed POST (``url`` + form ``fields``) for a result JSON too large for a request body.

    Upload the ``RunnerSubmitResultRequest`` JSON there, then call ``submit_uploaded_result``.
    """
    return ResultUploadResponse(**protocol.result_upload(call.principal, max_bytes=MAX_RESULT_BYTES))


@router.route("/runners/submit_uploaded_result", "POST", gate=RunnerGate(True, protocol.defer_lease),
              query=SessionQuery, body=SubmitUploadedResultRequest, response=str, extension=True,
              errors={400: "Not processing a job, or the key is not this job's upload"})
def submit_uploaded_result(call: Call) -> str:
    """Like ``submit_job_result``, with the result JSON read from the uploaded object ``key``."""
    return protocol.submit_uploaded_result(call.principal, call.body.key, max_bytes=MAX_RESULT_BYTES)



# ------------------------------------------------------------------------------------------
# Admin extensions
# ------------------------------------------------------------------------------------------


@router.route("/admin/runners", "GET", gate="admin", response=list[RunnerInfoResponse], extension=True)
def list_runners(call: Call) -> list[RunnerInfoResponse]:
    """Every runner, in id order: name, version, git hash and priority as registered, its ``state``
    (``offline``, ``idle``, ``assigned``: holds a job, ``processing``: fetched its audio), the job
    it holds, that job's progress, and its ``last_heartbeat`` (when it last renewed its lease).

    Needs an admin login (API tokens never qualify). An offline runner keeps only its id and
    creation time; its job, if it still holds one, goes back to the queue within a minute.
    """
    return admin.list_runners()
