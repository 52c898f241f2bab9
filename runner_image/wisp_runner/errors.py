"""Typed exceptions of the runner (HTTP errors, job failures, shutdown)."""

from __future__ import annotations


class RunnerError(Exception):
    """Base class of everything the runner raises on purpose."""


class FatalRunnerError(RunnerError):
    """The runner cannot continue (bad token, bad configuration); the process exits non-zero."""


class BackendError(RunnerError):
    """A backend call failed with an HTTP status the caller did not expect."""

    def __init__(self, status: int, detail: str, route: str) -> None:
        super().__init__(f"{route}: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.route = route


class UnauthorizedError(BackendError):
    """401: the runner token is unknown (e.g. the runner was invalidated)."""


class NotOnlineError(BackendError):
    """403 on a session call: the backend no longer lists this runner as online."""


class NoJobError(BackendError):
    """400 from a job route: no job is assigned to this runner (or it is not in process)."""


class JobAbortingError(BackendError):
    """405 from a job route: the assigned job was aborted before we started it."""


class RouteMissingError(BackendError):
    """404/405 from an optional Wisp extension route: the backend does not offer it."""


class TransientBackendError(BackendError):
    """Retries were exhausted on connection errors, timeouts, 5xx or 429: the backend (or the
    storage behind a pre-signed URL) is unreachable or busy; nothing is wrong with the job."""


class JobFailed(RunnerError):
    """The job cannot be (or was not) transcribed; the message goes to the user as error_msg."""


class UnsupportedSettingsError(JobFailed):
    """The job asks for something this runner cannot do; fail at once with a clear message."""


class JobUnavailableError(JobFailed):
    """A job-specific call (job info, audio, the audio's pre-signed URL) answered a 4xx, or the
    audio came with a wrong content type: this job cannot be done, however often it is retried.
    The message says why, for the user; the loop reports it and goes on to the next job."""

    def __init__(self, message: str, *, status: int, route: str) -> None:
        super().__init__(message)
        self.status = status
        self.route = route


class JobCancelled(RunnerError):
    """Raised inside a transcriber when the job was aborted, lost or the runner shuts down."""
