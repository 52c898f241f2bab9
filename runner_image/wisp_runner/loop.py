"""The runner loop: register → heartbeat (background thread) → fetch job → transcribe → submit.

Threads:
* main thread: registration, job handling, shutdown;
* heartbeat thread: POST heartbeat every `heartbeat_interval` s with the job's progress; while
  idle it holds a Wisp `wait_for_job` long-poll instead, when the backend offers it, so a new job
  is seen within a fraction of a second; it sets events (job available, abort, lost) that the main
  thread acts on;
* job worker thread: runs the Transcriber, so that an abort or a shutdown is answered within a
  fraction of a second while the transcriber stops at its next cooperative check.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from . import constants as c
from .client import BackendClient
from .constants import ABORT_MESSAGE, SOURCE_CODE_URL
from .errors import (
    BackendError,
    FatalRunnerError,
    JobAbortingError,
    JobCancelled,
    JobFailed,
    JobUnavailableError,
    NoJobError,
    NotOnlineError,
    RouteMissingError,
    TransientBackendError,
    UnauthorizedError,
    UnsupportedSettingsError,
)
from .interfaces import JobControl, Transcriber
from .job_settings import parse_job_settings
from .protection import TaskProtection
from .render import render_all
from .settings import RunnerConfig

log = logging.getLogger(__name__)

# an absolute local path (a temporary file, the model directory), not the path of a URL
_LOCAL_PATH = re.compile(r"(?<![\w/:.])(?!/api/)(?:/[\w.@+-]+){2,}/?")


def without_local_paths(message: str) -> str:
    """``message`` with absolute file paths replaced by "<file>" (error texts of libraries name
    the runner's temporary files; they mean nothing to the user and tell about the host)."""
    return _LOCAL_PATH.sub("<file>", message)

POLL = 0.05  # seconds; how often the main thread looks at its events
LONG_POLL_SPACING = 1.0  # s; long-polls answered early without a job are not repeated faster than this
CANCEL_ABORT, CANCEL_LOST, CANCEL_SHUTDOWN = "aborted", "lost", "shutdown"
# A job step that finds the backend (or storage) unreachable or busy is tried again after these
# pauses (doubling), keeping the job; the heartbeat thread decides when the backend is lost.
JOB_RETRY_FIRST, JOB_RETRY_MAX = 1.0, 30.0
# The audio download gives up (and fails the job) when storage keeps failing this long while the
# backend itself answers.
AUDIO_PATIENCE = 600.0
# A job whose failure report the backend refused but which it hands to us again is taken up
# again no sooner than this (doubling per refusal, up to REFUSED_MAX).
REFUSED_FIRST, REFUSED_MAX = 5.0, 300.0
# Job routes on which 405 means "aborted before it started": unregistering lets the backend finish it.
JOB_START_ROUTES = (c.ROUTE_JOB_INFO, c.ROUTE_JOB_AUDIO, c.ROUTE_WISP_AUDIO_URL)

T = TypeVar("T")


class Runner:
    def __init__(
        self, *, client: BackendClient, transcriber: Transcriber, config: RunnerConfig,
        stop: threading.Event | None = None, tokens: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        self.client = client
        # Tokens to try at registration, in order (several: one secret shared by N scaled tasks).
        self.tokens = list(dict.fromkeys(tokens or config.tokens or (client.token,)))
        if client.token not in self.tokens:
            client.use_token(self.tokens[0])
        self.transcriber = transcriber
        self.config = config
        self.stop = stop or threading.Event()  # set by signal handlers: shut down gracefully
        self._job_available = threading.Event()
        self._need_register = threading.Event()
        self._registered = threading.Event()
        self._hb_stop = threading.Event()
        self._busy = threading.Event()  # the main thread is handling a job
        self._long_polling = False  # the heartbeat thread is inside a wait_for_job call
        self._control: JobControl | None = None
        self._last_ok = time.monotonic()
        self.jobs_done = 0
        self._refused: dict[Any, tuple[int, float]] = {}  # job id → (refusals, not before)
        self.protection = TaskProtection.from_env()  # ECS scale-in protection while a job is held

    # ------------------------------------------------------------ lifecycle
    def run(self) -> int:
        """Run until `stop` is set; returns the process exit code."""
        exit_code = 0
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        try:
            if not self._register():
                return 0
            heartbeat.start()
            while not self.stop.is_set():
                if self._need_register.is_set():
                    self._reregister()
                elif self._job_available.wait(POLL):
                    self._busy.set()
                    self._job_available.clear()
                    try:
                        if not self.stop.is_set():
                            self._process_job()
                    finally:
                        self._busy.clear()
        except FatalRunnerError as exc:
            log.error("fatal: %s", exc)
            exit_code = 2
        finally:
            self._hb_stop.set()
            if heartbeat.is_alive():
                # A long-poll in flight is not waited for: unregistering ends it on the backend.
                heartbeat.join(timeout=0.2 if self._long_polling else 5)
            if self._registered.is_set():
                self._unregister_quietly()
        log.info("runner stopped (%d jobs handled)", self.jobs_done)
        return exit_code

    def _register(self) -> bool:
        """Register, retrying transient failures. Returns False if stopped first.

        One token (stock behaviour): on 403 (still online from an earlier life) unregister once and
        register again. Several tokens: a 403 means another task holds that token, so the next one
        is tried *without* unregistering (that would release the other task's job); when every
        token is taken, wait and go round again (a crashed holder's lease ends after 60 s).
        """
        cfg, unregistered, attempt = self.config, False, 0
        single = len(self.tokens) == 1
        rejected: set[str] = set()  # tokens the backend does not know (401)
        while not self.stop.is_set():
            retry_now, transient = False, False
            current = self.client.token
            order = [current] + [t for t in self.tokens if t != current]
            for token in order:
                if token in rejected or self.stop.is_set():
                    continue
                label = f"token {self.tokens.index(token) + 1} of {len(self.tokens)}"
                if token != self.client.token:
                    self.client.use_token(token)
                try:
                    runner_id = self.client.register(
                        name=cfg.name, version=cfg.version, git_hash=cfg.git_hash,
                        source_code_url=SOURCE_CODE_URL, priority=cfg.priority,
                    )
                except UnauthorizedError as exc:
                    rejected.add(token)
                    if len(rejected) == len(self.tokens):
                        what = "the runner token" if single else "every runner token"
                        raise FatalRunnerError(f"the backend rejected {what}: {exc.detail}") from exc
                    log.error("%s was rejected by the backend (%s); skipping it", label, exc.detail)
                except NotOnlineError:
                    if single:
                        if not unregistered:  # still online from an earlier life: release and retry at once
                            log.warning("runner is already registered; unregistering once and retrying")
                            unregistered = True
                            self._unregister_quietly()
                            retry_now = True
                        else:
                            log.warning("register still answers 403; retrying")
                    else:
                        log.info("%s is in use by another runner; trying the next token", label)
                except TransientBackendError as exc:
                    log.warning("register failed: %s", exc)
                    transient = True
                    break
                except BackendError as exc:
                    raise FatalRunnerError(f"registration refused: {exc}") from exc
                else:
                    log.info("registered as runner %s (%s)%s", runner_id, cfg.name, "" if single else f" with {label}")
                    self._last_ok = time.monotonic()
                    self._registered.set()
                    self._job_available.set()  # register makes an assignment attempt: look at once
                    return True
            if retry_now:
                continue
            if not single and not transient:
                log.warning("all %d runner tokens are in use by other runners; retrying", len(self.tokens))
            attempt += 1
            self.stop.wait(min(30.0, 1.0 * 2 ** min(attempt, 5)))
        return False

    def _reregister(self) -> None:
        self._need_register.clear()
        log.warning("backend no longer lists this runner as online; registering again")
        self._unregister_quietly()  # releases a job the backend may still think we hold
        self._register()

    def _unregister_quietly(self) -> None:
        for attempt in range(3):
            try:
                self.client.unregister(attempts=1)
                self._registered.clear()
                log.info("unregistered")
                return
            except (TransientBackendError, BackendError) as exc:
                log.warning("unregister failed: %s", exc)
                if isinstance(exc, UnauthorizedError):
                    break
                time.sleep(0.5 * (attempt + 1))
        self._registered.clear()

    def _mark_lost(self, reason: str) -> None:
        """The backend forgot us (restart, expiry): drop the job silently and register again."""
        log.warning("lost the backend session: %s", reason)
        self._registered.clear()
        self._need_register.set()
        control = self._control
        if control is not None:
            control.cancel(CANCEL_LOST)

    # ------------------------------------------------------------ heartbeats
    def _heartbeat_loop(self) -> None:
        """Busy (or no long-poll): a heartbeat every `heartbeat_interval` s. Idle with the
        wait_for_job extension: one long-poll after the other (each one is a heartbeat too)."""
        interval = self.config.heartbeat_interval
        next_beat = next_poll = time.monotonic()
        while not self._hb_stop.is_set():
            self.protection.renew()  # renews a held job's protection, retries a failed change
            now = time.monotonic()
            if self._registered.is_set() and self._can_long_poll() and now >= next_poll:
                outcome = self._long_poll_once()
                # "idle"/"assigned": poll again at once (never faster than LONG_POLL_SPACING);
                # "failed": back off like a failed heartbeat
                next_poll = now + (LONG_POLL_SPACING if outcome in ("idle", "assigned") else interval)
                next_beat = time.monotonic() + interval
                continue
            if now >= next_beat:
                next_beat = now + interval
                if self._registered.is_set():
                    self._heartbeat_once()
                continue
            self._hb_stop.wait(min(POLL, next_beat - now))

    def _idle(self) -> bool:
        return self._control is None and not self._busy.is_set() and not self._job_available.is_set()

    def _can_long_poll(self) -> bool:
        return self.config.long_poll > 0 and self.client.has_wait_for_job is not False and self._idle()

    def _long_poll_once(self) -> str:
        """One wait_for_job call; returns "idle", "assigned", "failed" or "missing"."""
        session = self.client.session_token
        self._long_polling = True
        try:
            answer = self.client.wait_for_job(self.config.long_poll)
        except RouteMissingError:
            self._heartbeat_once()  # this tick's heartbeat still has to happen
            return "missing"
        except (NotOnlineError, UnauthorizedError) as exc:
            self._lost_if_current(session, str(exc))
            return "failed"
        except (TransientBackendError, BackendError) as exc:
            self._heartbeat_failed(exc)
            return "failed"
        finally:
            self._long_polling = False
        self._heartbeat_ok(answer, self._control)
        return "assigned" if answer.get("job_assigned") else "idle"

    def _heartbeat_once(self) -> None:
        control = self._control
        progress = control.progress if control is not None else 0.0
        session = self.client.session_token
        try:
            answer = self.client.heartbeat(progress)
        except (NotOnlineError, UnauthorizedError) as exc:
            self._lost_if_current(session, str(exc))
            return
        except (TransientBackendError, BackendError) as exc:
            self._heartbeat_failed(exc)
            return
        self._heartbeat_ok(answer, control)

    def _lost_if_current(self, session: str | None, reason: str) -> None:
        # A refusal for a session the main thread has already replaced (re-registration in flight)
        # says nothing about the new one.
        if session is not None and session == self.client.session_token:
            self._mark_lost(reason)

    def _heartbeat_failed(self, exc: Exception) -> None:
        silent_for = time.monotonic() - self._last_ok
        log.warning("heartbeat failed (%s); no answer for %.0f s", exc, silent_for)
        if silent_for > self.config.outage_limit:
            self._mark_lost(f"no heartbeat accepted for {silent_for:.0f} s")

    def _heartbeat_ok(self, answer: dict[str, Any], control: JobControl | None) -> None:
        self._last_ok = time.monotonic()
        self._touch_health_file()
        if answer.get("abort") and control is not None and not control.cancelled:
            log.info("backend asked to abort the current job")
            control.cancel(CANCEL_ABORT)
        if answer.get("job_assigned"):
            self._job_available.set()

    def _touch_health_file(self) -> None:
        if self.config.health_file is not None:
            try:
                self.config.health_file.write_text(f"{time.time():.0f}\n")
            except OSError:
                pass

    # ------------------------------------------------------------ jobs
    def _process_job(self) -> None:
        """Take the assigned job. Failures are told apart: the backend unreachable or busy (the
        step is retried, the job kept), the job gone from us (dropped), the job impossible (reported
        to the user as failed, or dropped if the backend refuses the report); a job is never handed
        back to the queue for these."""
        try:
            info = self._keep_trying("retrieving the job", self.client.retrieve_job_info)
        except NoJobError:
            return  # stale hint: nothing assigned (any more)
        except JobAbortingError:
            self._release_job("job was aborted before it started")
            return
        except (NotOnlineError, UnauthorizedError) as exc:
            self._mark_lost(str(exc))
            return
        except JobUnavailableError as exc:
            log.error("the assigned job cannot be done: %s", exc)
            self._submit_error(None, str(exc))
            return
        except TransientBackendError as exc:
            log.warning("retrieve_job_info failed: %s", exc)  # stopping, or the session is lost
            return
        job_id = info.get("id")
        self._wait_if_refused(job_id)
        if self.stop.is_set() or self._need_register.is_set():
            return
        control = JobControl()
        self._control = control
        self.protection.hold()
        workdir = Path(tempfile.mkdtemp(prefix=f"wisp-job-{job_id}-"))
        log.info("job %s: started", job_id)
        try:
            self._run_job(job_id, info.get("settings"), control, workdir)
        except (NotOnlineError, UnauthorizedError) as exc:
            self._mark_lost(str(exc))
        except NoJobError as exc:
            log.warning("job %s: no longer ours (%s); going on", job_id, exc.detail)
        except JobAbortingError as exc:
            if exc.route in JOB_START_ROUTES:
                self._release_job(f"job {job_id} was aborted before it started")
            else:
                log.warning("job %s: the backend refused the result (%s); going on", job_id, exc.detail)
        except JobFailed as exc:  # JobUnavailableError: a 4xx on its audio, a wrong content type
            log.error("job %s: cannot be done: %s", job_id, exc)
            self._submit_error(job_id, str(exc))
        except TransientBackendError as exc:
            # Only when stopping or after the heartbeats declared the backend lost (re-registering
            # follows); never a reason to hand the job back by itself.
            log.error("job %s: backend unreachable (%s); the job is left to the backend", job_id, exc)
        except BackendError as exc:
            log.error("job %s: backend error: %s", job_id, exc)
            self._submit_error(job_id, f"runner could not process the job: {exc.detail}")
        finally:
            self._control = None
            self.protection.release()
            shutil.rmtree(workdir, ignore_errors=True)
            self.jobs_done += 1
            if not self.stop.is_set():
                self._job_available.set()  # the backend may have queued the next job for us

    def _keep_trying(self, what: str, call: Callable[[], T], *, give_up_after: float | None = None) -> T:
        """Run a job step until it gets through. A transient failure (connection error, timeout,
        5xx, 429, after the client's own retries) means the backend or storage is unreachable or
        busy, not that the job is bad: wait (growing pauses) and try again, keeping the job, while
        the heartbeat thread keeps it leased. Re-raises when stopping, when the job is cancelled or
        when the heartbeats declare the backend lost; with `give_up_after` (seconds), fails the job
        with JobUnavailableError once it has kept failing that long."""
        started, pause = time.monotonic(), JOB_RETRY_FIRST
        while True:
            try:
                return call()
            except TransientBackendError as exc:
                failing_for = time.monotonic() - started
                if give_up_after is not None and failing_for + pause > give_up_after:
                    raise JobUnavailableError(
                        f"The {what} kept failing for {failing_for / 60:.0f} minutes ({exc.detail})",
                        status=exc.status, route=exc.route) from exc
                log.warning("%s: backend unreachable or busy (%s); keeping the job, trying again in %.0f s",
                            what, exc.detail, pause)
                if self._pause(pause):
                    raise
                pause = min(pause * 2, JOB_RETRY_MAX)

    def _pause(self, seconds: float) -> bool:
        """Sleep; True (at once) when stopping, re-registering or the current job is cancelled."""
        deadline = time.monotonic() + seconds
        while True:
            control = self._control
            if self.stop.is_set() or self._need_register.is_set() or (control is not None and control.cancelled):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.stop.wait(min(POLL, left))

    def _wait_if_refused(self, job_id: Any) -> None:
        """A job whose failure report the backend refused but still hands to us: try it again, but
        not in a tight loop (and never by handing it back)."""
        refused = self._refused.get(job_id)
        if refused is not None and refused[1] > time.monotonic():
            left = refused[1] - time.monotonic()
            log.warning("job %s: offered again after the backend refused its failure report; retrying in %.0f s",
                        job_id, left)
            self._pause(left)

    def _run_job(self, job_id: Any, raw_settings: Any, control: JobControl, workdir: Path) -> None:
        audio = workdir / "audio"
        try:
            settings = parse_job_settings(raw_settings)
            self.transcriber.check_settings(settings)
        except UnsupportedSettingsError as exc:
            log.info("job %s: unsupported settings: %s", job_id, exc)
            # the backend accepts results only in process
            self._keep_trying("retrieving the audio", lambda: self.client.download_audio(audio, discard=True))
            self._submit_error(job_id, str(exc))
            return
        try:
            self._keep_trying("download of this job's audio", lambda: self.client.download_audio(audio),
                              give_up_after=AUDIO_PATIENCE)
        except TransientBackendError:
            if control.cancel_reason == CANCEL_ABORT:  # aborted while the download was being retried
                self._submit_error(job_id, ABORT_MESSAGE)
                return
            raise
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["transcript"] = self.transcriber.transcribe(audio, settings, control)
            except BaseException as exc:  # noqa: BLE001 — handed to the main thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, name=f"job-{job_id}", daemon=True)
        worker.start()
        while worker.is_alive() and not control.cancelled:
            if self.stop.is_set():
                control.cancel(CANCEL_SHUTDOWN)
            worker.join(POLL)

        if control.cancelled:
            reason = control.cancel_reason
            if reason == CANCEL_ABORT:
                log.info("job %s: aborted", job_id)
                self._submit_error(job_id, ABORT_MESSAGE)
            elif reason == CANCEL_SHUTDOWN:
                log.info("job %s: shutting down; the job is released back to the queue", job_id)
            else:
                log.warning("job %s: dropped (%s)", job_id, reason)
            worker.join(timeout=0 if reason == CANCEL_SHUTDOWN else 120)
            return

        error = outcome.get("error")
        if isinstance(error, JobCancelled):
            return
        if isinstance(error, JobFailed):
            self._submit_error(job_id, str(error))
            return
        if error is not None:
            log.error("job %s: transcription crashed", job_id, exc_info=error)
            self._submit_error(job_id, f"transcription failed on the runner ({type(error).__name__})")
            return
        try:
            transcript = render_all(outcome["transcript"], settings.alignment)
        except Exception as exc:  # noqa: BLE001
            log.exception("job %s: rendering failed", job_id)
            self._submit_error(job_id, f"could not render the transcript ({type(exc).__name__})")
            return
        control.set_progress(100)
        self._keep_trying("submitting the transcript", lambda: self.client.submit_result(
            transcript=transcript, inline_limit=self.config.inline_result_limit))
        log.info("job %s: transcript submitted", job_id)

    def _submit_error(self, job_id: Any, message: str) -> None:
        """Report the job as failed with `message`, if the backend still lets us. A refusal (400: not
        ours or not in process any more, 405, or another 4xx) drops the job: go on to the next one.
        Local file paths are cut from the message: the user sees it, the runner's log keeps them."""
        message = without_local_paths(message)
        try:
            self._keep_trying("reporting the failure", lambda: self.client.submit_result(error_msg=message))
            log.info("job %s: failed: %s", job_id, message)
            self._refused.pop(job_id, None)
        except (NotOnlineError, UnauthorizedError, TransientBackendError):
            raise
        except BackendError as exc:
            log.warning("job %s: the backend did not take the failure report (%s); dropping the job. Reason: %s",
                        job_id, exc, message)
            if job_id is not None:
                count = self._refused.get(job_id, (0, 0.0))[0] + 1
                wait = min(REFUSED_MAX, REFUSED_FIRST * 2 ** (count - 1))
                self._refused[job_id] = (count, time.monotonic() + wait)

    def _release_job(self, why: str) -> None:
        """Give the assigned job back: unregister (backend re-queues or finishes it) and re-register."""
        log.info("releasing job: %s", why)
        self._need_register.set()
