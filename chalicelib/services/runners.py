"""Runner protocol and scheduling (spec §3.6, §6) on DynamoDB.

Invariants, kept by writing the job row and the runner row in one transaction whenever a job
changes hands:

* a job is *pending* iff its ``queue`` attribute is set; it is *held* iff ``runner_key`` is set,
  and then the runner row with that key has ``job_id`` equal to the job's id;
* assignment updates both rows on the conditions "job still queued" and "runner still online,
  idle and the same registration", so no job goes to two runners and no runner holds two jobs,
  however calls interleave (upstream pops Redis structures separately and can double-assign);
* a runner is online while ``expires_at`` (explicit, compared on every read) lies in the future;
  once expired it stays offline until it registers again, and whoever notices first (the
  sweeper, its own next call, its re-registration) puts its job back in the queue. Finished jobs
  are never queued again (every requeue is conditional on "not finished").
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from .. import errors, mail, storage
from ..schemas.jobs import application_defaults, settings_from_stored
from ..schemas.runners import HeartbeatResponse, RegisteredResponse, RunnerJobInfoResponse, RunnerRegisterRequest
from ..store import jobs as job_store
from ..store import runners as store
from ..store.base import now
from ..store.counters import JOB, next_id, raise_generation
from ..store.jobs import QUEUED, Job
from ..store.runners import ONLINE, Runner
from . import events, tokens

log = logging.getLogger("wisp.runners")

LEASE_SECONDS = 60.0  # a runner silent this long is offline (spec §6.2)
MIN_LEASE_LEFT = 1.0  # never hand a job to a runner whose lease ends within this
ABORTED = "job was aborted"
MAX_INLINE_AUDIO_BYTES = 4_500_000  # Lambda's 6 MB response limit, less base64 overhead
AUDIO_URL_EXTENSION = "POST /api/wisp/runners/audio_url"
PENDING_PAGE = 10


def clock() -> float:
    """Seconds since the epoch; one place so tests can move time."""
    return time.time()


@dataclass
class RunnerPrincipal:
    """An authenticated runner call; ``runner`` is the row as of the gate's lease refresh.

    ``replaced`` holds the previous values of the attributes the gate's ``LeaseWork`` set; it is
    empty when the gate refreshed the lease alone. ``lease_deferred``: the gate only read the row
    (``DEFER_LEASE``), together with the job counter's ``queue_generation``; the handler's own
    transaction must extend the lease on the authentication's conditions."""

    runner: Runner
    replaced: dict[str, Any] = field(default_factory=dict)
    lease_deferred: bool = False
    queue_generation: int | None = None

    @property
    def token_hash(self) -> str:
        return str(self.runner.token_hash)


@dataclass(frozen=True)
class LeaseWork:
    """A change a runner call makes to its own row, done by the conditional UpdateItem that
    authenticates the call and extends the lease (``refresh_lease``) whenever ``condition`` holds,
    so the usual case of the call costs one request. If it does not hold, the lease is extended
    alone and the handler finds the row as it is (and makes or refuses the change itself)."""

    sets: dict[str, Any]  # Runner attribute name -> new value
    condition: Any


DEFER_LEASE = LeaseWork({}, None)


def _not_aborted() -> Any:
    return Runner.abort.does_not_exist() | (Runner.abort == False)  # noqa: E712


def report_progress(body: Any) -> LeaseWork | None:
    """Lease work of ``heartbeat``: store the reported progress of the job being processed.

    Idle runners report 0; their heartbeats refresh the lease alone."""
    from pydantic import ValidationError

    from ..schemas.runners import HeartbeatRequest

    try:
        progress = HeartbeatRequest.model_validate(body if body is not None else {}).progress
    except ValidationError:
        return None  # the route answers 422 after the gate
    if progress <= 0:
        return None
    return LeaseWork({"progress": progress},
                     Runner.job_id.exists() & (Runner.in_process == True) & _not_aborted())  # noqa: E712


def defer_lease(_body: Any) -> LeaseWork:
    """Lease work of ``submit_job_result``: none at the gate, which authenticates by reading the
    row (and the queue generation) instead; the result's transaction extends the lease."""
    return DEFER_LEASE


def mark_processing(_body: Any) -> LeaseWork:
    """Lease work of ``retrieve_job_audio`` / ``audio_url``: the held job is being processed."""
    return LeaseWork({"in_process": True}, Runner.job_id.exists() & _not_aborted())


def _conditional(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) in ("ConditionalCheckFailedException",
                                                          "TransactionCanceledException")


def is_live(runner: Runner | None, moment: float | None = None) -> bool:
    moment = clock() if moment is None else moment
    return bool(runner is not None and runner.online == ONLINE and runner.expires_at is not None
                and float(runner.expires_at) > moment)


# ------------------------------------------------------------------------------------------
# Admin: creating and invalidating runners
# ------------------------------------------------------------------------------------------


def create_runner() -> tuple[int, str]:
    """A new runner with a fresh token (only its hash is stored); returns (id, token)."""
    secret = tokens.new_secret()
    runner_id = next_id("runner")
    Runner(tokens.hash_secret(secret), id=runner_id).save(condition=Runner.token_hash.does_not_exist())
    return runner_id, secret


def invalidate_runner(runner_id: int) -> str:
    """Unregister (job back to the queue), delete the runner, and detach it from finished jobs."""
    runner = store.by_id(runner_id)
    if runner is None:
        return f"No runner with id {runner_id} exists; nothing to do"
    if runner.online is not None:
        _release(runner, go_offline=True)
    runner.delete()
    for job_id in job_store.ids_by_runner(runner_id):
        try:
            Job(job_id).update(actions=[Job.runner_id.remove()],
                               condition=Job.finish_timestamp.exists() & (Job.runner_id == runner_id))
        except UpdateError as exc:
            if not _conditional(exc):
                raise
    assign_pending()
    return f"Runner {runner_id} was invalidated"


# ------------------------------------------------------------------------------------------
# Authentication (used by runner_auth) and the lease
# ------------------------------------------------------------------------------------------


def refresh_lease(token_hash: str, session_hash: str, work: LeaseWork | None = None) -> RunnerPrincipal | None:
    """Extend the lease of an online runner whose session matches; None if any check fails.

    One conditional UpdateItem: this *is* the authentication of every ``runner+S`` call. With
    ``work``, that update also makes the call's change if it can (else a second one extends the
    lease alone)."""
    moment = clock()
    authentic = (Runner.online == ONLINE) & (Runner.expires_at > moment) & (Runner.session_hash == session_hash)
    lease = {"expires_at": moment + LEASE_SECONDS}
    if work is not None:
        row = _set_returning_previous(token_hash, {**lease, **work.sets}, authentic & work.condition)
        if row is not None:
            replaced = {name: getattr(row, name) for name in work.sets}
            return RunnerPrincipal(_assign(row, {**lease, **work.sets}), replaced)
    row = _set_returning_previous(token_hash, lease, authentic)
    return None if row is None else RunnerPrincipal(_assign(row, lease))


def read_lease(token_hash: str, session_hash: str) -> RunnerPrincipal | None:
    """Authenticate a ``DEFER_LEASE`` call by reading: the runner row and the job counter in one
    strongly consistent BatchGetItem. None if any check fails."""
    from ..store.base import get_together
    from ..store.counters import Counter

    row, counter = get_together((Runner, token_hash), (Counter, JOB), consistent=True)
    if not isinstance(row, Runner) or not is_live(row) or row.session_hash != session_hash:
        return None
    generation = counter.generation_or_zero if isinstance(counter, Counter) else 0
    return RunnerPrincipal(row, lease_deferred=True, queue_generation=generation)


def _set_returning_previous(token_hash: str, values: dict[str, Any], condition: Any) -> Runner | None:
    """One conditional UpdateItem setting ``values``; the row as it was before, None if the condition failed."""
    from pynamodb.constants import ALL_OLD

    try:
        data = Runner._get_connection().update_item(
            token_hash, actions=[getattr(Runner, name).set(value) for name, value in values.items()],
            condition=condition, return_values=ALL_OLD)
    except UpdateError as exc:
        if _conditional(exc):
            return None
        raise
    return Runner.from_raw_data(data["Attributes"])


def _assign(runner: Runner, values: dict[str, Any]) -> Runner:
    """The row as the update left it: ``runner`` (as it was before) with ``values`` set."""
    for name, value in values.items():
        setattr(runner, name, value)
    return runner


def forget_expired(runner: Runner) -> None:
    """A call from a runner whose lease ran out: put its job back at once (don't wait for the sweeper)."""
    if runner.online is not None and not is_live(runner):
        _release(runner, go_offline=True, require_expired=True)
        assign_pending()


# ------------------------------------------------------------------------------------------
# Protocol
# ------------------------------------------------------------------------------------------


def register(principal: RunnerPrincipal, request: RunnerRegisterRequest) -> RegisteredResponse:
    """Bring the runner online (403 if it already is), then try to give it a job."""
    runner = principal.runner
    moment = clock()
    if is_live(runner, moment):
        raise errors.Forbidden("This runner is already registered as online")
    if runner.online is not None or runner.job_id is not None:
        _release(runner, go_offline=True, require_expired=True)
    session = tokens.new_secret()
    fresh = Runner(runner.token_hash)
    try:
        fresh.update(
            actions=[
                Runner.online.set(ONLINE), Runner.session_hash.set(tokens.hash_secret(session)),
                Runner.expires_at.set(moment + LEASE_SECONDS), Runner.name.set(request.name),
                Runner.version.set(request.version), Runner.git_hash.set(request.git_hash),
                Runner.source_code_url.set(request.source_code_url), Runner.priority.set(request.priority),
            ],
            condition=Runner.token_hash.exists() & Runner.job_id.does_not_exist()
            & (Runner.online.does_not_exist() | (Runner.expires_at <= moment)),
        )
    except UpdateError as exc:
        if _conditional(exc):
            raise errors.Forbidden("This runner is already registered as online") from None
        raise
    assign_pending(idle_runner=fresh)
    return RegisteredResponse(id=int(fresh.id), session_token=session)


def unregister(principal: RunnerPrincipal) -> str:
    """Go offline; a held job goes back to the queue (or fails if an abort was requested)."""
    runner = principal.runner
    if runner.online is not None or runner.job_id is not None:
        released = _release(runner, go_offline=True)
        if released:
            assign_pending()
    return "Success"


def heartbeat(principal: RunnerPrincipal, progress: float) -> HeartbeatResponse:
    """The lease was refreshed by the gate (storing the progress, see ``report_progress``, when it
    could); report abort/assignment. Progress is not published as an event: stream readers find
    it on the runner row (``event_stream``), so a heartbeat costs one request however it goes."""
    runner = principal.runner
    if runner.job_id is not None and runner.in_process:
        if runner.abort:
            return HeartbeatResponse(abort=True, job_assigned=False)
        if "progress" not in principal.replaced and (runner.progress is None or float(runner.progress) != progress):
            _store_progress(runner, progress)
    return HeartbeatResponse(abort=False, job_assigned=runner.job_id is not None)


def _store_progress(runner: Runner, progress: float) -> bool:
    try:
        runner.update(actions=[Runner.progress.set(progress)], condition=Runner.job_id == runner.job_id)
    except UpdateError as exc:
        if not _conditional(exc):
            raise
        return False
    return True


def wait_for_job(principal: RunnerPrincipal, timeout: float, *, poll_interval: float = 0.25) -> HeartbeatResponse:
    """Wisp long-poll: like an idle heartbeat, but answers as soon as a job is assigned (≤ timeout s).

    Polls the runner's own row (one consistent GetItem per ``poll_interval``)."""
    runner = principal.runner
    if runner.job_id is None:
        assign_pending(idle_runner=runner)
    deadline = time.monotonic() + timeout
    while True:
        if runner.job_id is not None:
            return heartbeat(principal, float(runner.progress or 0)) if runner.in_process else \
                HeartbeatResponse(abort=False, job_assigned=True)
        if time.monotonic() + poll_interval > deadline or not is_live(runner):
            return HeartbeatResponse(abort=False, job_assigned=False)
        time.sleep(poll_interval)
        found = store.get(principal.token_hash)
        if found is None or found.session_hash != runner.session_hash:
            return HeartbeatResponse(abort=False, job_assigned=False)
        runner = principal.runner = found


def _held_job(runner: Runner) -> int:
    if runner.job_id is None:
        raise errors.BadRequest("No job is assigned to this runner")
    if runner.abort:
        raise errors.MethodNotAllowed("The job assigned to this runner was aborted")
    return int(runner.job_id)


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
    if not runner.in_process:
        try:
            runner.update(actions=[Runner.in_process.set(True)],
                          condition=(Runner.job_id == job_id) & (Runner.abort.does_not_exist() | (Runner.abort == False)))  # noqa: E712
        except UpdateError as exc:
            if not _conditional(exc):
                raise
            current = store.get(principal.token_hash)
            if current is not None and current.job_id == job_id:
                _held_job(current)  # 405 if the job was aborted meanwhile
            raise errors.BadRequest("No job is assigned to this runner") from None
    if not runner.job_audio_key:
        raise errors.AppError("The audio of the assigned job is missing")
    return str(runner.job_audio_key)


def job_audio(principal: RunnerPrincipal) -> tuple[bytes, str]:
    """The held job's audio bytes and an audio/* or video/* content type (stock runner checks it)."""
    key = start_processing(principal)
    try:
        found = storage.get(key, max_bytes=MAX_INLINE_AUDIO_BYTES)
    except storage.ObjectMissing:
        raise errors.AppError("The audio of the assigned job is missing") from None
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
    return storage.presigned_get(start_processing(principal))


def result_upload(principal: RunnerPrincipal, *, max_bytes: int) -> dict[str, Any]:
    """Wisp extension: a pre-signed POST for a result too large for a request body."""
    runner = principal.runner
    if runner.job_id is None or not runner.in_process:
        raise errors.BadRequest("This runner is not processing a job")
    key = storage.new_result_key(int(runner.job_id))
    return {**storage.presigned_post(key, max_bytes=max_bytes), "key": key}


def submit_uploaded_result(principal: RunnerPrincipal, key: str, *, max_bytes: int) -> str:
    """Wisp extension: ``submit_result`` with the JSON body read from a ``result_upload`` object."""
    import json

    from pydantic import ValidationError

    from ..schemas.runners import RunnerSubmitResultRequest

    runner = principal.runner
    if runner.job_id is None or not runner.in_process:
        raise errors.BadRequest("This runner is not processing a job")
    if not key.startswith(storage.result_prefix(int(runner.job_id))) or ".." in key:
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
        problems = exc.errors(include_url=False) if isinstance(exc, ValidationError) else [
            {"type": "json_invalid", "loc": (), "msg": f"JSON decode error: {exc}", "input": None}]
        raise errors.ValidationFailed([{"type": p["type"], "loc": ["body", *p["loc"]], "msg": p["msg"],
                                        "input": None} for p in problems]) from None
    transcript = request.transcript.model_dump() if request.transcript is not None else None
    try:
        return submit_result(principal, error_msg=request.error_msg, transcript=transcript)
    finally:
        storage.delete([key])


def submit_result(principal: RunnerPrincipal, *, error_msg: str | None, transcript: dict[str, Any] | None) -> str:
    """Persist the result, free the runner, notify the owner, then try to assign the next job.

    Everything happens before the response: Lambda freezes once it has answered."""
    runner = principal.runner
    if runner.job_id is None or not runner.in_process:
        raise errors.BadRequest("This runner is not processing a job")
    job_id = int(runner.job_id)
    if runner.abort and error_msg is None:
        error_msg = ABORTED
    failed = error_msg is not None or transcript is None
    if not failed:
        _store_transcript(job_id, transcript or {})
    finished_at = now()
    job_actions = [Job.finish_timestamp.set(finished_at), Job.finished.set(job_store.FINISHED),
                   Job.runner_key.remove(), Job.queue.remove(), Job.audio_key.remove()]
    if failed:
        job_actions.append(Job.error_msg.set(error_msg or "unknown error"))
    else:
        job_actions += [Job.downloaded.set(False), Job.has_transcript.set(True)]
    user_id = int(runner.job_user_id)
    runner_actions = [f.remove() for f in store.job_fields()]
    runner_cond = Runner.job_id == job_id
    if principal.lease_deferred:  # the gate only read the row: authenticate and extend the lease here
        moment = clock()
        runner_actions.append(Runner.expires_at.set(moment + LEASE_SECONDS))
        runner_cond = runner_cond & (Runner.online == ONLINE) & (Runner.session_hash == runner.session_hash) \
            & (Runner.expires_at > moment)

    def build(tx: Any) -> None:
        tx.update(Job(job_id), actions=job_actions,
                  condition=(Job.runner_key == runner.token_hash) & Job.finish_timestamp.does_not_exist())
        tx.update(Runner(runner.token_hash), actions=runner_actions, condition=runner_cond)

    try:
        events.commit(build, (user_id, events.JOB_UPDATED, job_id), let_go=[(user_id, job_id, runner.token_hash)])
    except TransactWriteError as exc:
        reasons = [getattr(r, "code", None) for r in (exc.cancellation_reasons or [])]
        if not failed:
            storage.delete(storage.transcript_keys(job_id))
        if len(reasons) >= 2 and reasons[1] in (None, "None"):
            # the job is gone (its owner was deleted) or no longer ours: just let go of it
            _clear_job(runner, job_id)
            _after_idle(runner)
            return "Success"
        if principal.lease_deferred:
            current = store.get(runner.token_hash)
            if current is not None and not is_live(current):
                forget_expired(current)
                raise errors.Forbidden("This runner is not registered as online") from None
        raise errors.BadRequest("This runner is not processing a job") from None
    if runner.job_audio_key:
        storage.delete([runner.job_audio_key])
    if runner.job_email_notification:
        _notify(user_id, job_id, runner.job_file_name or "", error_msg if failed else None)
    if principal.lease_deferred:
        runner.expires_at = moment + LEASE_SECONDS
    _after_idle(runner, queue_generation=principal.queue_generation)
    return "Success"


def _after_idle(runner: Runner, *, queue_generation: int | None = None) -> None:
    """The runner let go of its job: look for the next one (spec §6.3 trigger), unless the queue
    generation read with the row (``queue_generation``) is the one the runner noted when it got
    its job: then no job was queued since, and the queue was empty then (see ``place_new_job``)."""
    noted = runner.queue_generation
    for attribute in store.job_fields():
        setattr(runner, attribute.attr_name, None)
    if queue_generation is not None and noted is not None and int(noted) == queue_generation:
        return
    assign_pending(idle_runner=runner, queue_generation=queue_generation)


def _store_transcript(job_id: int, transcript: dict[str, Any]) -> None:
    import json

    for kind in storage.TRANSCRIPT_TYPES:
        value = transcript[kind]
        text = json.dumps(value, ensure_ascii=False) if kind == "as_json" else str(value)
        storage.put(storage.transcript_key(job_id, kind), text.encode("utf-8"),
                    content_type=storage.TRANSCRIPT_MEDIA[kind][0])


def _notify(user_id: int, job_id: int, file_name: str, error: str | None) -> None:
    from pynamodb.exceptions import DoesNotExist

    from ..store.users import User

    try:
        user = User.get(user_id)
    except DoesNotExist:
        return
    if error is None:
        mail.send_job_success_email(user.email, job_id, file_name)
    else:
        mail.send_job_failure_email(user.email, job_id, file_name, error)


def _clear_job(runner: Runner, job_id: int) -> None:
    try:
        Runner(runner.token_hash).update(actions=[f.remove() for f in store.job_fields()],
                                         condition=Runner.job_id == job_id)
    except UpdateError as exc:
        if not _conditional(exc):
            raise


# ------------------------------------------------------------------------------------------
# Assignment (spec §6.3)
# ------------------------------------------------------------------------------------------


def assign_pending(*, new_job: Job | None = None, idle_runner: Runner | None = None,
                   max_assignments: int = 1, queue_generation: int | None = None) -> list[int]:
    """Hand the oldest pending jobs to the highest-priority idle runners; returns the job ids.

    Strict FIFO by job id; priority only picks the runner. ``new_job``/``idle_runner`` are rows the
    caller just wrote: indexes are eventually consistent and might not show them yet.

    A runner that has just become idle (``idle_runner``, one assignment) takes the oldest pending
    job itself, without looking for idle runners of higher priority: any such runner would have
    taken the job already, except in the moment of a race, and then it merely waits for the next
    job. If that job was the whole queue and the caller read the queue generation
    (``queue_generation``) before looking, the runner notes it (see ``place_new_job``)."""
    moment = clock()
    hinted = idle_runner is not None and idle_runner.job_id is None and is_live(idle_runner, moment + MIN_LEASE_LEFT)
    first_page: list[Job] | None = None
    page = min(PENDING_PAGE, max_assignments + 2)
    if hinted:
        # a runner just became idle: most often the queue is empty, so look there first
        first_page = _pending(new_job, set(), limit=page)
        if not first_page:
            return []
    if hinted and idle_runner is not None and max_assignments == 1:
        whole_queue = len(first_page or []) == 1 and queue_generation is not None
        for job in first_page or []:
            if job.aborting:
                _fail_queued(job)
                continue
            outcome = _try_assign(job, idle_runner, generation=queue_generation if whole_queue else None)
            if outcome == "ok":
                return [int(job.id)]
            if outcome in ("runner", "both"):
                return []
        return []
    idle = {r.token_hash: r for r in store.idle_after(moment + MIN_LEASE_LEFT)}
    if hinted and idle_runner is not None:
        idle.setdefault(idle_runner.token_hash, idle_runner)
    runners = sorted(idle.values(), key=lambda r: (-int(r.priority or 0), int(r.id)))
    if not runners:
        return []
    assigned: list[int] = []
    seen: set[int] = set()
    for _round in range(max(3, max_assignments * 2)):
        page = min(PENDING_PAGE, max_assignments - len(assigned) + 2)
        jobs, first_page = (first_page, None) if first_page is not None else (_pending(new_job, seen, limit=page), None)
        if not jobs:
            break
        for job in jobs:
            if not runners or len(assigned) >= max_assignments:
                return assigned
            seen.add(int(job.id))
            if job.aborting:
                _fail_queued(job)  # safety net; aborts normally take jobs out of the queue
                continue
            while runners:
                outcome = _try_assign(job, runners[0])
                if outcome == "ok":
                    assigned.append(int(job.id))
                    runners.pop(0)
                    break
                if outcome in ("runner", "both"):
                    runners.pop(0)
                if outcome in ("job", "both"):
                    break
        if not runners or len(assigned) >= max_assignments or len(jobs) < page:
            break
    return assigned


def _pending(new_job: Job | None, seen: set[int], *, limit: int) -> list[Job]:
    found = {int(j.id): j for j in job_store.pending(limit + len(seen)) if int(j.id) not in seen}
    if new_job is not None and new_job.queue == QUEUED and int(new_job.id) not in seen:
        found.setdefault(int(new_job.id), new_job)
    return [found[k] for k in sorted(found)][:limit]


def place_new_job(job: Job, *, queue_generation: int) -> None:
    """Write a new job (an unsaved, queued ``Job``) together with its events: straight to the
    highest-priority idle runner if there is one, else into the queue. One transaction either way.

    ``queue_generation``: the job counter's queue generation read when the job's id was taken.
    A runner given the job directly notes it; when it finishes, it looks at the queue only if the
    generation moved since (see ``_after_idle``). So a job queued while runners are online raises
    the generation (one more UpdateItem), after it is in the queue.

    The queue is not read first: it is empty whenever a runner is idle, except in the moment
    between a runner freeing up (or a job being put back) and that trigger's own look at the
    queue. A new job arriving in that moment may start before the older one, which is then
    handed out by the next trigger or the sweeper; it is delayed, never lost or doubled."""
    moment = clock()
    online = store.online_after(moment + MIN_LEASE_LEFT)
    idle = sorted((r for r in online if r.job_id is None), key=lambda r: (-int(r.priority or 0), int(r.id)))
    for runner in idle[:3]:
        if _try_assign(job, runner, new=True, generation=queue_generation) == "ok":
            return
    events.commit(lambda tx: tx.save(job, condition=Job.id.does_not_exist()),
                  (int(job.user_id), events.JOB_CREATED, int(job.id)),
                  held=[(int(job.user_id), int(job.id), events.QUEUE)])
    if online:
        raise_generation(JOB)  # busy runners look at the queue when they finish


def _try_assign(job: Job, runner: Runner, *, new: bool = False, generation: int | None = None) -> str:
    """One transaction: job queued → held by runner; runner idle → holding job. "ok" or who failed.

    ``new``: ``job`` is not written yet and is created already held (with its ``job_created``).
    ``generation``: a queue generation at which the queue was known empty apart from this job;
    the runner notes it (see ``place_new_job``)."""
    moment = clock()
    settings = job.settings if job.settings is not None else application_defaults().model_dump(mode="json")
    held = {"runner_key": runner.token_hash, "runner_id": runner.id, "runner_name": runner.name,
            "runner_version": runner.version, "runner_git_hash": runner.git_hash,
            "runner_source_code_url": runner.source_code_url}

    def build(tx: Any) -> None:
        if new:
            row = Job.from_raw_data(job.serialize())
            row.queue = None
            for name, value in held.items():
                setattr(row, name, value)
            tx.save(row, condition=Job.id.does_not_exist())
        else:
            tx.update(Job(job.id), actions=[Job.queue.remove()] + [getattr(Job, k).set(v) for k, v in held.items()],
                      condition=(Job.queue == QUEUED) & Job.finish_timestamp.does_not_exist())
        tx.update(
            Runner(runner.token_hash),
            actions=[Runner.job_id.set(job.id), Runner.job_user_id.set(job.user_id),
                     Runner.job_settings.set(settings), Runner.job_audio_key.set(job.audio_key or ""),
                     Runner.job_email_notification.set(bool(job.email_notification)),
                     Runner.job_file_name.set(job.file_name), Runner.in_process.set(False),
                     Runner.abort.set(False), Runner.progress.set(0),
                     Runner.expires_at.set(moment + LEASE_SECONDS)]
            + ([Runner.queue_generation.set(generation)] if generation is not None else []),
            condition=(Runner.online == ONLINE) & (Runner.session_hash == runner.session_hash)
            & Runner.job_id.does_not_exist() & (Runner.expires_at > moment + MIN_LEASE_LEFT),
        )

    announced = [(int(job.user_id), events.JOB_CREATED, int(job.id))] if new else []
    try:
        events.commit(build, *announced, (int(job.user_id), events.JOB_UPDATED, int(job.id)),
                      held=[(int(job.user_id), int(job.id), runner.token_hash)],
                      let_go=[] if new else [(int(job.user_id), int(job.id), events.QUEUE)])
    except TransactWriteError as exc:
        reasons = [getattr(r, "code", None) for r in (exc.cancellation_reasons or [])]
        job_bad = len(reasons) > 0 and reasons[0] not in (None, "None")
        runner_bad = len(reasons) > 1 and reasons[1] not in (None, "None")
        if not reasons:
            log.warning("assignment of job %s failed: %s", job.id, exc)
            return "both"
        return "both" if job_bad and runner_bad else "job" if job_bad else "runner" if runner_bad else "both"
    return "ok"


def _fail_queued(job: Job) -> None:
    try:
        events.commit(lambda tx: tx.update(Job(job.id), actions=job_store.failed_actions(ABORTED),
                                           condition=(Job.queue == QUEUED) & Job.finish_timestamp.does_not_exist()),
                      (int(job.user_id), events.JOB_UPDATED, int(job.id)),
                      let_go=[(int(job.user_id), int(job.id), events.QUEUE)])
    except TransactWriteError:
        return  # no longer queued
    if job.audio_key:
        storage.delete([job.audio_key])


# ------------------------------------------------------------------------------------------
# Releasing runners: unregister, invalidation, expiry (spec §6.4)
# ------------------------------------------------------------------------------------------


def _release(runner: Runner, *, go_offline: bool, require_expired: bool = False) -> int | None:
    """Let the runner drop its job (back to the queue, or failed if an abort was requested) and
    optionally go offline. Returns the id of a job put back in the queue."""
    moment = clock()
    runner_actions = [f.remove() for f in store.job_fields()]
    if go_offline:
        runner_actions += [f.remove() for f in store.online_fields()]
    runner_cond = Runner.token_hash.exists()
    if require_expired:
        runner_cond = runner_cond & (Runner.expires_at.does_not_exist() | (Runner.expires_at <= moment))
    job_id = runner.job_id
    if job_id is None:
        try:
            Runner(runner.token_hash).update(actions=runner_actions, condition=runner_cond & Runner.job_id.does_not_exist())
        except UpdateError as exc:
            if not _conditional(exc):
                raise
        return None
    job = _job_or_none(int(job_id))
    runner_cond = runner_cond & (Runner.job_id == job_id)
    requeued: int | None = None
    announced: list[tuple[int, str, int]] = []
    letting_go: list[events.Holding] = []
    queueing: list[events.Holding] = []
    job_actions: list[Any] = []
    if job is not None and job.runner_key == runner.token_hash and job.finish_timestamp is None:
        job_actions = [Job.runner_key.remove()] + [f.remove() for f in job_store.runner_fields()]
        if job.aborting or runner.abort:
            job_actions += job_store.failed_actions(ABORTED)
        else:
            job_actions += [Job.queue.set(QUEUED)]
            requeued = int(job.id)
            queueing.append((int(job.user_id), int(job.id), events.QUEUE))
        announced.append((int(job.user_id), events.JOB_UPDATED, int(job.id)))
        letting_go.append((int(job.user_id), int(job.id), str(runner.token_hash)))

    def build(tx: Any) -> None:
        if job is not None and job_actions:
            tx.update(Job(job.id), actions=job_actions,
                      condition=(Job.runner_key == runner.token_hash) & Job.finish_timestamp.does_not_exist())
        tx.update(Runner(runner.token_hash), actions=runner_actions, condition=runner_cond)

    try:
        events.commit(build, *announced, held=queueing, let_go=letting_go)
    except TransactWriteError as exc:
        log.info("releasing runner %s lost a race (%s); leaving it to the next attempt", runner.id, exc)
        return None
    if requeued is not None:
        raise_generation(JOB)  # busy runners look at the queue when they finish
    return requeued


def _job_or_none(job_id: int) -> Job | None:
    from pynamodb.exceptions import DoesNotExist

    try:
        return Job.get(job_id, consistent_read=True)
    except DoesNotExist:
        return None


def sweep(*, max_assignments: int = 100) -> dict[str, int]:
    """Scheduled every minute: release expired runners (their jobs go back to the queue, aborting
    ones finish as failed), then assign pending jobs to idle runners."""
    moment = clock()
    released = 0
    for stale in store.expired_before(moment):
        current = store.get(stale.token_hash)
        if current is None or current.online is None or is_live(current, moment):
            continue
        _release(current, go_offline=True, require_expired=True)
        released += 1
    assigned = assign_pending(max_assignments=max_assignments)
    return {"released": released, "assigned": len(assigned)}
