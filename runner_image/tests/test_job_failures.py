""""This job cannot be done" versus "the backend is unreachable" (fake backend over real HTTP).

A job whose audio is gone is reported as failed, in words a person understands, or dropped when
the backend refuses the report; it is never handed back to the queue (no unregister) and never
taken again in a loop. Connection errors and 5xx keep the job: the step is tried again.
"""

from __future__ import annotations

import time

import pytest

from wisp_runner.client import BackendClient, job_problem
from wisp_runner.dummy import DummyTranscriber
from wisp_runner.errors import (
    BackendError,
    JobAbortingError,
    JobUnavailableError,
    NoJobError,
    NotOnlineError,
    RouteMissingError,
)

SETTINGS = {"model": "tiny.en", "language": "en"}


def _finished(backend, job_id, timeout=10.0):
    return backend.wait_for(lambda: backend.jobs[job_id].state in ("success", "failed"), timeout=timeout)


def _job_calls(backend, route, job_started_at):
    return [c for c in backend.calls_to(route) if c.at >= job_started_at]


@pytest.mark.parametrize("extensions", [False, True], ids=["retrieve_job_audio", "presigned_url"])
def test_missing_audio_fails_the_job_once_and_the_runner_goes_on(backend, start_runner, extensions):
    # GIVEN a job whose audio is missing (404 from the backend, or NoSuchKey behind the pre-signed URL)
    backend.offer_extensions = extensions
    start_runner(backend, DummyTranscriber(segments=1))
    assert backend.wait_for(lambda: backend.online)
    broken = backend.submit_job(SETTINGS, audio=None)
    # WHEN the runner takes it
    assert _finished(backend, broken)
    # THEN it is failed with a message a person understands
    job = backend.jobs[broken]
    assert job.state == "failed"
    assert job.error_msg.startswith("The audio of this job could not be downloaded (HTTP 404): it is missing on the server")
    # and it was taken once: not handed back, not retried as if the backend were unreachable
    audio_route = "/runners/audio_url" if extensions else "/retrieve_job_audio"
    assert len(backend.calls_to(audio_route)) == 1
    assert not backend.calls_to("/unregister") and len(backend.calls_to("/register")) == 1
    # AND the next job is done as usual, without a pause
    submitted = time.monotonic()
    good = backend.submit_job(SETTINGS)
    assert _finished(backend, good, timeout=5) and backend.jobs[good].state == "success"
    assert backend.jobs[good].finished_at - submitted < 2.0


def test_gone_audio_says_so(backend, start_runner):
    backend.missing_audio = "410"
    start_runner(backend, DummyTranscriber(segments=1))
    job_id = backend.submit_job(SETTINGS, audio=None)
    assert _finished(backend, job_id)
    assert backend.jobs[job_id].error_msg == (
        "The audio of this job could not be downloaded (HTTP 410): it is no longer on the server "
        "(The audio of this job is gone)")
    assert not backend.calls_to("/unregister")


@pytest.mark.parametrize("extensions", [False, True], ids=["retrieve_job_audio", "presigned_url"])
def test_job_failed_by_the_backend_is_dropped_without_a_loop(backend, start_runner, extensions):
    # GIVEN a backend that fails a job without audio itself and then answers 400 for it (Wisp)
    backend.missing_audio = "fail"
    backend.offer_extensions = extensions
    start_runner(backend, DummyTranscriber(segments=1))
    assert backend.wait_for(lambda: backend.online)
    broken = backend.submit_job(SETTINGS, audio=None)
    good = backend.submit_job(SETTINGS)
    # THEN the runner drops it at once and does the next job
    assert _finished(backend, good, timeout=5) and backend.jobs[good].state == "success"
    assert backend.jobs[broken].error_msg == "the audio of this job is missing"  # the backend's own message
    audio_route = "/runners/audio_url" if extensions else "/retrieve_job_audio"
    assert len(backend.calls_to(audio_route)) == 2  # one per job
    assert not backend.calls_to("/unregister")
    time.sleep(0.5)
    assert len(backend.calls_to(audio_route)) == 2


@pytest.mark.parametrize("status", [400, 405])
def test_refused_failure_report_drops_the_job(backend, start_runner, status):
    # GIVEN a backend that refuses the failure report (it gave up on the job first)
    backend.refuse_results = status
    start_runner(backend, DummyTranscriber(segments=1))
    assert backend.wait_for(lambda: backend.online)
    broken = backend.submit_job(SETTINGS, audio=None)
    assert backend.wait_for(lambda: backend.calls_to("/submit_job_result"), timeout=5)
    # WHEN the report is refused THEN the job is dropped: no unregister, no re-register, no second try
    backend.refuse_results = None
    good = backend.submit_job(SETTINGS)
    assert _finished(backend, good, timeout=5) and backend.jobs[good].state == "success"
    assert len(backend.calls_to("/retrieve_job_audio")) == 2
    assert not backend.calls_to("/unregister") and len(backend.calls_to("/register")) == 1
    assert backend.jobs[broken].transcript is None


def test_backend_5xx_on_audio_keeps_the_job(backend, start_runner):
    # GIVEN the backend answers 503 on the audio longer than the client's own retries (4 tries)
    backend.fail_routes = {"/retrieve_job_audio": 6}
    start_runner(backend, DummyTranscriber(segments=1))
    job_id = backend.submit_job(SETTINGS)
    # THEN the runner keeps the job, tries again after a pause, and finishes it
    assert _finished(backend, job_id, timeout=15)
    assert backend.jobs[job_id].state == "success"
    assert len(backend.calls_to("/retrieve_job_audio")) == 7
    assert not backend.calls_to("/unregister") and len(backend.calls_to("/register")) == 1


def test_storage_5xx_keeps_the_job(backend, start_runner):
    backend.offer_extensions = True
    backend.fail_routes = {"/s3/audio": 5}
    start_runner(backend, DummyTranscriber(segments=1))
    job_id = backend.submit_job(SETTINGS)
    assert _finished(backend, job_id, timeout=15)
    assert backend.jobs[job_id].state == "success"
    assert not backend.calls_to("/unregister")


def test_backend_5xx_on_submit_keeps_the_result(backend, start_runner):
    backend.fail_routes = {"/submit_job_result": 6}
    start_runner(backend, DummyTranscriber(segments=1))
    job_id = backend.submit_job(SETTINGS)
    assert _finished(backend, job_id, timeout=15)
    assert backend.jobs[job_id].state == "success"
    assert len(backend.calls_to("/retrieve_job_audio")) == 1  # not transcribed twice
    assert not backend.calls_to("/unregister")


def test_undecodable_audio_is_reported(backend, start_runner):
    start_runner(backend, DummyTranscriber(segments=1))
    job_id = backend.submit_job(SETTINGS, audio=b"")
    assert _finished(backend, job_id)
    assert backend.jobs[job_id].error_msg == "The audio could not be decoded: the file is empty"
    assert not backend.calls_to("/unregister")


# ------------------------------------------------------------------ classification table

@pytest.mark.parametrize("status, detail, optional, expected", [
    (400, "No job is assigned to this runner", False, NoJobError),
    (403, "runner is not online", False, NotOnlineError),
    (405, "The assigned job was aborted", False, JobAbortingError),
    (404, "audio not found", False, JobUnavailableError),
    (410, "gone", False, JobUnavailableError),
    (422, "bad", False, JobUnavailableError),
    (404, "Not Found", True, RouteMissingError),  # an extension the backend does not have
    (405, "Method Not Allowed", True, RouteMissingError),
    (404, "The audio of this job is missing", True, JobUnavailableError),  # the extension exists
])
def test_job_call_errors_are_classified(status, detail, optional, expected):
    error = BackendClient._error(status, detail, "/api/runners/retrieve_job_audio", optional, "audio")
    assert type(error) is expected


def test_errors_outside_job_calls_stay_backend_errors():
    assert type(BackendClient._error(404, "Not Found", "/api/runners/heartbeat", False)) is BackendError


def test_job_problem_wording():
    assert job_problem("audio", 404, "NoSuchKey") == (
        "The audio of this job could not be downloaded (HTTP 404): it is missing on the server")
    assert job_problem("audio", 403, "AccessDenied") == (
        "The audio of this job could not be downloaded (HTTP 403): the server refused access to it")
    assert job_problem("information", 409, "busy") == (
        "The information of this job could not be downloaded (HTTP 409): the server refused to send it (busy)")
