"""Runners router (spec §3.6, protocol §6). Runners authenticate with their token as Bearer;
every call but register/unregister also carries ``session_token``."""
from __future__ import annotations

from chalice import Response

from ..schemas.runners import (
    HeartbeatRequest, HeartbeatResponse, RegisteredResponse, RunnerJobInfoResponse, RunnerRegisterRequest,
    RunnerSubmitResultRequest, SessionQuery,
)
from ..services import protocol
from ..services.runner_gate import RunnerGate
from ._http import Call, Router, text_response

router = Router(__name__, prefix="/api/runners", tag="runners")


@router.route("/register", "POST", gate="runner", body=RunnerRegisterRequest, response=RegisteredResponse,
              errors={403: "This runner is already registered as online"})
def register(call: Call) -> RegisteredResponse:
    """Register the runner as online; returns its id and a session token for the later calls.

    403 if it is online already (a runner restarting after a crash unregisters first).
    """
    return protocol.register(call.principal, call.body)


@router.route("/unregister", "POST", gate="runner", response=str)
def unregister(call: Call) -> str:
    """Go offline. A held job goes back to the queue (or fails, if its owner aborted it)."""
    return protocol.unregister(call.principal)


@router.route("/retrieve_job_info", "GET", gate="runner+S", query=SessionQuery, response=RunnerJobInfoResponse,
              errors={400: "No job assigned", 405: "The assigned job was aborted by the user"})
def retrieve_job_info(call: Call) -> RunnerJobInfoResponse:
    """Id and settings of the job assigned to this runner."""
    return protocol.job_info(call.principal)


@router.route("/retrieve_job_audio", "POST", gate=RunnerGate(True, protocol.mark_processing), query=SessionQuery,
              response=bytes, response_media="audio/*",
              errors={400: "No job assigned", 405: "The assigned job was aborted by the user",
                      413: "Audio over the Lambda limit: use the audio_url extension"})
def retrieve_job_audio(call: Call) -> Response:
    """The audio of the assigned job (audio/* or video/*); marks the job as being processed.

    Audio over the Lambda response limit gets 413; fetch it with the Wisp extension
    ``POST /api/wisp/runners/audio_url``.
    """
    data, content_type = protocol.job_audio(call.principal)
    return text_response(data, content_type=content_type)


@router.route("/submit_job_result", "POST", gate=RunnerGate(True, protocol.defer_lease), query=SessionQuery,
              body=RunnerSubmitResultRequest, response=str,
              errors={400: "This runner is not processing the job (any more); the result was not stored"})
def submit_job_result(call: Call) -> str:
    """Submit the transcript (all five formats) or an error message for the processed job.

    The result is stored, the owner notified, and the runner is idle again when this returns.
    """
    transcript = call.body.transcript.model_dump() if call.body.transcript is not None else None
    return protocol.submit_result(call.principal, error_msg=call.body.error_msg, transcript=transcript)


@router.route("/heartbeat", "POST", gate=RunnerGate(True, protocol.report_progress), query=SessionQuery,
              body=HeartbeatRequest, response=HeartbeatResponse)
def heartbeat(call: Call) -> HeartbeatResponse:
    """Keep the runner online (60 s lease), report progress; says whether a job is assigned or aborted."""
    return protocol.heartbeat(call.principal, call.body.progress)
