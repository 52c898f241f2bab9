"""The runner protocol (spec §3.6, §6.1): register, heartbeat, fetch the job, deliver the result.

Every handler gets a ``RunnerPrincipal`` from the runner gate (``runner_gate.py``), whose lease
renewal has already made the call's own change where the route declared one (``LeaseWork``).
Everything happens before the response: Lambda freezes once it has answered.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, NoReturn

from .. import errors, storage
from ..schemas.jobs import application_defaults, settings_from_stored
from ..schemas.runners import HeartbeatResponse, RegisteredResponse, RunnerJobInfoResponse, RunnerRegisterRequest
from ..store import jobs as job_store
from ..store import lifecycle
from ..store import runners as runner_store
from ..store.lifecycle import LeaseWork, Outcome, Released
from . import assignment, leases, results, tokens
from .leases import LEASE_SECONDS, RunnerPrincipal, is_live

MAX_INLINE_AUDIO_BYTES = 4_500_000  # Lambda's 6 MB response limit, less base64 overhead
AUDIO_URL_EXTENSION = "POST /api/wisp/runners/audio_url"
NOT_PROCESSING = "This runner is not processing a job"


def audio_missing_message(job_id: int) -> str:
    return f"The audio of job {job_id} is missing on the server, so it cannot be transcribed"


# ------------------------------------------------------------------------------------------
# What the gate's lease renewal also does, per route
# ------------------------------------------------------------------------------------------


def report_progress(body: Any) -> LeaseWork | None:
    """``heartbeat``: store the reported progress of the job being processed. Idle runners report
    0; their heartbeats renew the lease alone."""
    from pydantic import ValidationError

    from ..schemas.runners import HeartbeatRequest

    try:
        progress = HeartbeatRequest.model_validate(body if body is not None else {}).progress
    except ValidationError:
        return None  # the route answers 422 after the gate
    return lifecycle.work_progress(progress) if progress > 0 else None


def mark_processing(_body: Any) -> LeaseWork:
    """``retrieve_job_audio`` / ``audio_url``: the held job is being processed."""
    return lifecycle.work_start()


def defer_lease(_body: Any) -> LeaseWork:
    """``submit_job_result``: the gate only reads; the result's transition extends the lease."""
    return leases.DEFER


# ------------------------------------------------------------------------------------------
# Registration and heartbeats
# ------------------------------------------------------------------------------------------


def register(principal: RunnerPrincipal, request: RunnerRegisterRequest) -> RegisteredResponse:
    """Bring the runner online (403 if it already is), then try to give it a job."""
    runner = principal.runner
    moment = leases.clock()
    if is_live(runner, moment):
        raise errors.Forbidden("This runner is already registered as online")
    if runner.online is not None or runner.job_id is not None:
        leases.release(runner, go_offline=True, require_expired=True)
    session = tokens.new_secret()
    fresh = lifecycle.register(runner.token_hash, session_hash=tokens.hash_secret(session), moment=moment,
                               expires_at=moment + LEASE_SECONDS,
                               info={"name": request.name, "version": request.version, "git_hash": request.git_hash,
                                     "source_code_url": request.source_code_url, "priority": request.priority})
    if fresh is None:
        raise errors.Forbidden("This runner is already registered as online")
    assignment.assign_pending(idle_runner=dataclasses.replace(fresh, id=runner.id))
    return RegisteredResponse(id=int(runner.id), session_token=session)


def unregister(principal: RunnerPrincipal) -> str:
    """Go offline; a held job goes back to the queue (or fails if an abort was requested)."""
    runner = principal.runner
    if runner.online is not None or runner.job_id is not None:
        if leases.release(runner, go_offline=True) is Released.REQUEUED:
            assignment.assign_pending()
    return "Success"


def forget_expired(runner: runner_store.RunnerRecord) -> None:
    """A call from a runner whose lease ran out: put its job back at once (don't wait for the sweeper)."""
    if runner.online is not None and not is_live(runner):
        leases.release(runner, go_offline=True, require_expired=True)
        assignment.assign_pending()


def heartbeat(principal: RunnerPrincipal, progress: float) -> HeartbeatResponse:
    """The lease was renewed by the gate (storing the progress, see ``report_progress``, when it
    could); report abort/assignment. Progress is not published as an event: stream readers find
    it on the runner row (``event_stream``), so a heartbeat costs one request however it goes."""
    runner = principal.runner
    if runner.job_id is not None and runner.in_process:
        if runner.abort:
            return HeartbeatResponse(abort=True, job_assigned=False)
        if not principal.worked and (runner.progress is None or runner.progress != progress):
            lifecycle.progress(runner, runner.job_id, progress)
    return HeartbeatResponse(abort=False, job_assigned=runner.job_id is not None)


def wait_for_job(principal: RunnerPrincipal, timeout: float, *, poll_interval: float = 0.25) -> HeartbeatResponse:
    """Wisp long-poll: like an idle heartbeat, but answers as soon as a job is assigned (≤ timeout s).

    Polls the runner's own row (one consistent GetItem per ``poll_interval``)."""
    runner = principal.runner
    if runner.job_id is None:
        assignment.assign_pending(idle_runner=runner)
    deadline = time.monotonic() + timeout
    while True:
        if runner.job_id is not None:
            return heartbeat(principal, float(runner.progress or 0)) if runner.in_process else \
                HeartbeatResponse(abort=False, job_assigned=True)
        if time.monotonic() + poll_interval > deadline or not is_live(runner):
            return HeartbeatResponse(abort=False, job_assigned=False)
        time.sleep(poll_interval)
        found = runner_store.get(principal.token_hash)
        if found is None or found.session_hash != runner.session_hash:
            return HeartbeatResponse(abort=False, job_assigned=False)
        runner = principal.runner = found


# ------------------------------------------------------------------------------------------
# The held job
# ------------------------------------------------------------------------------------------


def _held_job(runner: runner_store.RunnerRecord) -> int:
    if runner.job_id is None:
        raise errors.BadRequest("No job is assigned to this runner")
    if runner.abort:
        raise errors.MethodNotAllowed("The job assigned to this runner was aborted")
    return runner.job_id


def job_info(principal: RunnerPrincipal) -> RunnerJobInfoResponse:
    """Id and settings of the held job (copied onto the runner row at assignment)."""
    runner = principal.runner
    job_id = _held_job(runner)
    settings = settings_from_stored(runner.job_settings) if runner.job_settings else application_defaults()
    return RunnerJobInfoResponse(id=job_id, settings=settings)


def start_processing(principal: RunnerPrincipal) -> str:
    """Mark the held job as being processed (the gate did, see ``mark_processing``, unless it could
    not); returns the S3 key of its audio."""
    runner = principal.runner
    job_id = _held_job(runner)
    if not runner.in_process and not lifecycle.start(runner, job_id):
        current = runner_store.get(principal.token_hash)
        if current is not None and current.job_id == job_id:
            _held_job(current)  # 405 if the job was aborted meanwhile
        raise errors.BadRequest("No job is assigned to this runner")
    if not runner.job_audio_key:
        _fail_unreadable(principal, job_id)
    return str(runner.job_audio_key)


def _fail_unreadable(principal: RunnerPrincipal, job_id: int) -> NoReturn:
    """The held job's audio is gone: the job fails at once, with a message that says so, and the
    runner is free for the next one (it must not hand the job back and take it again)."""
    runner = principal.runner
    message = audio_missing_message(job_id)
    if lifecycle.finish(runner, job_id, int(runner.job_user_id or 0), error_msg=message).done:
        if runner.job_email_notification:
            results.notify(int(runner.job_user_id or 0), job_id, runner.job_file_name or "", message)
        assignment.after_idle(runner)
    raise errors.BadRequest(f"{message}; the job was marked as failed")


def job_audio(principal: RunnerPrincipal) -> tuple[bytes, str]:
    """The held job's audio bytes and an audio/* or video/* content type (stock runner checks it)."""
    key = start_processing(principal)
    try:
        found = storage.get(key, max_bytes=MAX_INLINE_AUDIO_BYTES)
    except storage.ObjectMissing:
        _fail_unreadable(principal, int(principal.runner.job_id or 0))
    except storage.ObjectTooLarge as exc:
        raise errors.PayloadTooLarge(
            f"The audio ({exc.size} bytes) is too large for this route; fetch it through the Wisp "
            f"extension {AUDIO_URL_EXTENSION}?session_token=… (returns a pre-signed download URL)"
        ) from None
    content_type = found.content_type or ""
    if content_type.split("/", 1)[0].strip().lower() not in ("audio", "video"):
        content_type = "audio/"
    return found.data, content_type


def audio_url(principal: RunnerPrincipal) -> str:
    """Wisp extension: a pre-signed GET for the held job's audio (marks it in process)."""
    key = start_processing(principal)
    try:
        storage.head(key)
    except storage.ObjectMissing:
        _fail_unreadable(principal, int(principal.runner.job_id or 0))
    return storage.presigned_get(key)


# ------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------


def _processing(runner: runner_store.RunnerRecord) -> int:
    if runner.job_id is None or not runner.in_process:
        raise errors.BadRequest(NOT_PROCESSING)
    return runner.job_id


def result_upload(principal: RunnerPrincipal, *, max_bytes: int) -> dict[str, Any]:
    """Wisp extension: a pre-signed POST for a result too large for a request body."""
    key = storage.new_result_key(_processing(principal.runner))
    return {**storage.presigned_post(key, max_bytes=max_bytes), "key": key}


def submit_uploaded_result(principal: RunnerPrincipal, key: str, *, max_bytes: int) -> str:
    """Wisp extension: ``submit_result`` with the JSON body read from a ``result_upload`` object,
    which then is the job's stored result."""
    from pydantic import ValidationError

    from ..schemas.runners import RunnerSubmitResultRequest

    job_id = _processing(principal.runner)
    if not key.startswith(storage.result_prefix(job_id)) or ".." in key:
        raise errors.BadRequest("This key is not an upload for the job this runner is processing")
    try:
        found = storage.get(key, max_bytes=max_bytes)
    except storage.ObjectMissing:
        raise errors.BadRequest("Nothing was uploaded under this key") from None
    except storage.ObjectTooLarge:
        storage.delete([key])
        raise errors.PayloadTooLarge("The uploaded result is too large") from None
    try:
        request = RunnerSubmitResultRequest.model_validate(json.loads(found.data))
    except (ValueError, ValidationError) as exc:
        storage.delete([key])
        problems: list[tuple[str, list[Any], str]] = (
            [(p["type"], list(p["loc"]), p["msg"]) for p in exc.errors(include_url=False)]
            if isinstance(exc, ValidationError) else [("json_invalid", [], f"JSON decode error: {exc}")])
        raise errors.ValidationFailed([{"type": kind, "loc": ["body", *loc], "msg": msg, "input": None}
                                       for kind, loc, msg in problems]) from None
    transcript = request.transcript.model_dump() if request.transcript is not None else None
    if request.error_msg is not None or transcript is None:
        storage.delete([key])
        return submit_result(principal, error_msg=request.error_msg, transcript=None)
    return submit_result(principal, error_msg=None, transcript=transcript, stored_as=key)


def submit_result(principal: RunnerPrincipal, *, error_msg: str | None, transcript: dict[str, Any] | None,
                  stored_as: str | None = None) -> str:
    """Finish the held job with its transcript or error, free the runner, notify the owner, then
    try to assign the next job. A result for a job this runner no longer holds is refused (400)
    and leaves everything as it was."""
    runner = principal.runner
    job_id = _processing(runner)
    user_id = int(runner.job_user_id or 0)
    if runner.abort:  # whatever the runner reports after an abort (its audio is gone), the job was aborted
        error_msg = lifecycle.ABORTED
    failed = error_msg is not None or transcript is None
    result_key = None if failed else (stored_as or results.stage(job_id, transcript or {}))
    outcome = lifecycle.finish(runner, job_id, user_id, result_key=result_key, error_msg=error_msg if failed else None,
                               lease=leases.deferred_lease(principal))
    if not outcome.done:
        results.discard([result_key])
        _refuse(principal, job_id, outcome)
        return "Success"  # the job is gone (its owner deleted the account): the runner let go of it
    if result_key is not None:
        results.publish(job_id, transcript or {})
    results.discard([runner.job_audio_key, result_key])
    if runner.job_email_notification:
        results.notify(user_id, job_id, runner.job_file_name or "", error_msg if failed else None)
    renewed = runner if not principal.lease_deferred else dataclasses.replace(runner, expires_at=leases.clock() + LEASE_SECONDS)
    assignment.after_idle(renewed, queue_generation=principal.queue_generation)
    return "Success"


def _refuse(principal: RunnerPrincipal, job_id: int, outcome: Outcome) -> None:
    """Why a result was not taken, as the right error; a runner left holding a job that is gone
    (its owner deleted the account) simply lets go of it."""
    runner = principal.runner
    current = runner_store.get(runner.token_hash)
    if principal.lease_deferred and current is not None and not is_live(current):
        forget_expired(current)
        raise errors.Forbidden("This runner is not registered as online")
    if outcome.job_changed and current is not None and current.job_id == job_id:
        lifecycle.let_go(current, job_id)
        assignment.after_idle(current)
        if job_store.get(job_id) is None:
            return  # the job is gone: nothing to refuse
    raise errors.BadRequest(f"{NOT_PROCESSING}: job {job_id} is no longer held by this runner (it finished, "
                            "was aborted or went to another runner); the result was not stored")
