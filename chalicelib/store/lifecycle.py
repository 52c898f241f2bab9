"""Every change of state of jobs, runners and the job event log, one function per transition.

Services decide *what* should happen (which runner gets which job, when a lease is over); this
module makes it happen, atomically. Each transition

* writes the job row and the runner row together in one DynamoDB transaction whenever a job
  changes hands, on conditions built from the named pieces below (``job_still_queued``,
  ``runner_holds_job``, ...), so no job goes to two runners, no runner holds two jobs, and a
  finished job is never queued again, however calls interleave;
* keeps the event log's bookkeeping itself: the ``job_created`` / ``job_updated`` events it causes
  and the log's record of who holds each job ride in the same transaction (``store/transact.py``);
* answers with a typed ``Outcome`` read from the *names* of the items whose condition failed.

Invariants: a job is pending iff its ``queue`` attribute is set; it is held iff ``runner_key`` is
set, and then the runner row with that key has ``job_id`` equal to the job's id. A runner is online
while ``expires_at`` lies in the future. No pynamodb or botocore type leaves this module: callers
pass and get ``JobRecord`` / ``RunnerRecord`` values and plain numbers.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import UpdateError

from . import transact
from .base import now
from .counters import JOB, Counter
from .jobs import FINISHED, QUEUED, Job, JobRecord
from .runners import ONLINE, Runner, RunnerRecord, job_fields, online_fields, record as runner_record
from .transact import QUEUE, Cancelled, Tx

JOB_CREATED = "job_created"
JOB_UPDATED = "job_updated"
JOB_DELETED = "job_deleted"

ABORTED = "job was aborted"  # the error of an aborted job (the stock runner submits the same text)


class Outcome(enum.Enum):
    """How a transition ended. Anything but ``DONE`` wrote nothing."""

    DONE = "done"
    JOB_CHANGED = "the job is no longer in the state the change needs"
    RUNNER_CHANGED = "the runner is no longer in the state the change needs"
    BOTH_CHANGED = "neither the job nor the runner is in the state the change needs"

    @property
    def done(self) -> bool:
        return self is Outcome.DONE

    @property
    def job_changed(self) -> bool:
        return self in (Outcome.JOB_CHANGED, Outcome.BOTH_CHANGED)

    @property
    def runner_changed(self) -> bool:
        return self in (Outcome.RUNNER_CHANGED, Outcome.BOTH_CHANGED)


def _outcome(failed: frozenset[str]) -> Outcome:
    job, runner = "job" in failed, "runner" in failed
    if job and runner:
        return Outcome.BOTH_CHANGED
    if job:
        return Outcome.JOB_CHANGED
    if runner:
        return Outcome.RUNNER_CHANGED
    return Outcome.BOTH_CHANGED  # something else refused (a user's log): nothing was written


def _run(tx: Tx) -> Outcome:
    try:
        transact.run(tx)
    except Cancelled as exc:
        return _outcome(exc.failed)
    return Outcome.DONE


def _conditional(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _update(item: Any, actions: list[Any], condition: Any) -> bool:
    """One conditional UpdateItem; False if the condition did not hold."""
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if _conditional(exc):
            return False
        raise
    return True


# ------------------------------------------------------------------------------------------
# The named pieces every condition is built from
# ------------------------------------------------------------------------------------------


def job_is_new() -> Any:
    return Job.id.does_not_exist()


def job_unfinished() -> Any:
    return Job.finish_timestamp.does_not_exist()


def job_still_queued() -> Any:
    return (Job.queue == QUEUED) & job_unfinished()


def job_held_by(token_hash: str) -> Any:
    return (Job.runner_key == token_hash) & job_unfinished()


def job_unheld() -> Any:
    return Job.runner_key.does_not_exist() & job_unfinished()


def job_awaits_first_download(user_id: int) -> Any:
    return (Job.user_id == user_id) & (Job.downloaded == False)  # noqa: E712


def job_finished_with_runner(runner_id: int) -> Any:
    return Job.finish_timestamp.exists() & (Job.runner_id == runner_id)


def runner_exists() -> Any:
    return Runner.token_hash.exists()


def runner_is_new() -> Any:
    return Runner.token_hash.does_not_exist()


def runner_idle() -> Any:
    return Runner.job_id.does_not_exist()


def runner_holds_job(job_id: int) -> Any:
    return Runner.job_id == job_id


def runner_holds_some_job() -> Any:
    return Runner.job_id.exists()


def runner_session_live(session_hash: str, after: float) -> Any:
    """Online with this session, and a lease that ends after ``after``."""
    return (Runner.online == ONLINE) & (Runner.session_hash == session_hash) & (Runner.expires_at > after)


def runner_lease_over(moment: float) -> Any:
    return Runner.expires_at.does_not_exist() | (Runner.expires_at <= moment)


def runner_offline_or_over(moment: float) -> Any:
    return Runner.online.does_not_exist() | (Runner.expires_at <= moment)


def runner_not_aborted() -> Any:
    return Runner.abort.does_not_exist() | (Runner.abort == False)  # noqa: E712


def runner_processing() -> Any:
    return Runner.in_process == True  # noqa: E712


def runner_not_processing() -> Any:
    return Runner.in_process.does_not_exist() | (Runner.in_process == False)  # noqa: E712


# ------------------------------------------------------------------------------------------
# Attribute groups
# ------------------------------------------------------------------------------------------


def _job_runner_fields() -> list[Any]:
    """The job attributes that describe its runner (cleared when a job goes back to the queue)."""
    return [Job.runner_key, Job.runner_id, Job.runner_name, Job.runner_version, Job.runner_git_hash,
            Job.runner_source_code_url]


def _job_failed(error_msg: str) -> list[Any]:
    """Finish an unfinished job as failed: out of the queue, audio key gone."""
    return [Job.finish_timestamp.set(now()), Job.finished.set(FINISHED), Job.error_msg.set(error_msg),
            Job.audio_key.remove(), Job.queue.remove(), Job.queue_pos.remove()]


def _held_by(runner: RunnerRecord) -> dict[str, Any]:
    return {"runner_key": runner.token_hash, "runner_id": runner.id, "runner_name": runner.name,
            "runner_version": runner.version, "runner_git_hash": runner.git_hash,
            "runner_source_code_url": runner.source_code_url}


# ------------------------------------------------------------------------------------------
# Runners: created, registered, leased, removed
# ------------------------------------------------------------------------------------------


def create_runner(token_hash: str, runner_id: int) -> None:
    Runner(token_hash, id=runner_id).save(condition=runner_is_new())


def register(token_hash: str, *, session_hash: str, moment: float, expires_at: float,
             info: dict[str, Any]) -> RunnerRecord | None:
    """Bring an idle runner online with a new session; None if it is online already."""
    row = Runner(token_hash)
    values = {"online": ONLINE, "session_hash": session_hash, "expires_at": expires_at, **info}
    if not _update(row, [getattr(Runner, name).set(value) for name, value in values.items()],
                   runner_exists() & runner_idle() & runner_offline_or_over(moment)):
        return None
    return runner_record(row)


@dataclass(frozen=True)
class LeaseWork:
    """A change a runner call makes to its own row together with the update that authenticates it
    and extends its lease (``renew_lease``), when ``condition`` holds."""

    sets: dict[str, Any]
    condition: Any


def work_progress(progress: float) -> LeaseWork:
    """Store the reported progress of the job being processed."""
    return LeaseWork({"progress": progress}, runner_holds_some_job() & runner_processing() & runner_not_aborted())


def work_start() -> LeaseWork:
    """The held job is being processed (the runner fetches its audio)."""
    return LeaseWork({"in_process": True}, runner_holds_some_job() & runner_not_aborted())


@dataclass(frozen=True)
class Renewed:
    runner: RunnerRecord  # the row as the update left it
    worked: bool  # the lease work was done too


def renew_lease(token_hash: str, *, session_hash: str, moment: float, expires_at: float,
                work: LeaseWork | None = None) -> Renewed | None:
    """Extend the lease of an online runner whose session matches (one conditional UpdateItem,
    making ``work``'s change too if its condition holds, else a second one for the lease alone).
    None if the runner is not online with this session."""
    authentic = runner_session_live(session_hash, moment)
    lease = {"expires_at": expires_at}
    if work is not None:
        before = _set_returning_previous(token_hash, {**lease, **work.sets}, authentic & work.condition)
        if before is not None:
            return Renewed(_with(before, {**lease, **work.sets}), True)
    before = _set_returning_previous(token_hash, lease, authentic)
    return None if before is None else Renewed(_with(before, lease), False)


def _set_returning_previous(token_hash: str, values: dict[str, Any], condition: Any) -> RunnerRecord | None:
    try:
        data = Runner._get_connection().update_item(
            token_hash, actions=[getattr(Runner, name).set(value) for name, value in values.items()],
            condition=condition, return_values=ALL_OLD)
    except UpdateError as exc:
        if _conditional(exc):
            return None
        raise
    return runner_record(Runner.from_raw_data(data["Attributes"]))


def _with(runner: RunnerRecord, values: dict[str, Any]) -> RunnerRecord:
    import dataclasses

    return dataclasses.replace(runner, **values)


def remove_runner(token_hash: str) -> None:
    Runner(token_hash).delete()


def detach_finished_jobs(runner_id: int, job_ids: list[int]) -> None:
    """Forget a removed runner's id on the finished jobs it worked on."""
    for job_id in job_ids:
        _update(Job(job_id), [Job.runner_id.remove()], job_finished_with_runner(runner_id))


def raise_queue_generation() -> None:
    """Busy runners look at the queue when they finish only if this moved (see services/assignment)."""
    Counter(JOB).update(actions=[Counter.generation.add(1)])


# ------------------------------------------------------------------------------------------
# Jobs: created, handed out, processed, finished
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewJob:
    id: int
    user_id: int
    file_name: str
    settings_id: int | None
    settings: dict[str, Any] | None
    email_notification: bool
    audio_key: str

    def row(self) -> Job:
        return Job(self.id, user_id=self.user_id, file_name=self.file_name, creation_timestamp=now(),
                   job_settings_id=self.settings_id, settings=self.settings,
                   email_notification=self.email_notification, audio_key=self.audio_key)


def create(job: NewJob) -> None:
    """Write a new job into the queue, with its ``job_created``."""
    row = job.row()
    row.queue, row.queue_pos = QUEUED, job.id
    tx = Tx()
    tx.save("job", row, job_is_new())
    tx.event(job.user_id, JOB_CREATED, job.id)
    tx.hold(job.user_id, job.id, QUEUE)
    if not _run(tx).done:
        raise RuntimeError(f"job {job.id} exists already")


def create_assigned(job: NewJob, runner: RunnerRecord, *, settings: dict[str, Any], moment: float, min_left: float,
                    expires_at: float, generation: int | None) -> Outcome:
    """Write a new job straight into the hands of an idle runner, with its events."""
    row = job.row()
    row.handouts = 1
    for name, value in _held_by(runner).items():
        setattr(row, name, value)
    tx = Tx()
    tx.save("job", row, job_is_new())
    _hand_to(tx, runner, job.id, job.user_id, settings, job.audio_key, job.email_notification, job.file_name,
             handouts=1, moment=moment, min_left=min_left, expires_at=expires_at, generation=generation)
    tx.event(job.user_id, JOB_CREATED, job.id)
    tx.event(job.user_id, JOB_UPDATED, job.id)
    tx.hold(job.user_id, job.id, runner.token_hash)
    return _run(tx)


def assign(job: JobRecord, runner: RunnerRecord, *, settings: dict[str, Any], moment: float, min_left: float,
           expires_at: float, generation: int | None) -> Outcome:
    """A queued job goes to an idle runner: job queued → held; runner idle → holding it.

    ``generation``: a queue generation at which the queue was known empty apart from this job;
    the runner notes it (see services/assignment)."""
    tx = Tx()
    tx.update("job", Job(job.id),
              [Job.queue.remove(), Job.queue_pos.remove(), Job.handouts.add(1)]
              + [getattr(Job, name).set(value) for name, value in _held_by(runner).items()],
              job_still_queued())
    _hand_to(tx, runner, job.id, job.user_id, settings, job.audio_key or "", job.email_notification, job.file_name,
             handouts=job.handouts + 1, moment=moment, min_left=min_left, expires_at=expires_at,
             generation=generation)
    tx.event(job.user_id, JOB_UPDATED, job.id)
    tx.hold(job.user_id, job.id, runner.token_hash)
    tx.let_go(job.user_id, job.id, QUEUE)
    return _run(tx)


def _hand_to(tx: Tx, runner: RunnerRecord, job_id: int, user_id: int, settings: Any, audio_key: str,
             email_notification: bool, file_name: str, *, handouts: int, moment: float, min_left: float,
             expires_at: float, generation: int | None) -> None:
    actions = [Runner.job_id.set(job_id), Runner.job_user_id.set(user_id), Runner.job_settings.set(settings),
               Runner.job_audio_key.set(audio_key), Runner.job_email_notification.set(bool(email_notification)),
               Runner.job_file_name.set(file_name), Runner.job_handouts.set(handouts),
               Runner.in_process.set(False), Runner.abort.set(False), Runner.progress.set(0),
               Runner.expires_at.set(expires_at)]
    if generation is not None:
        actions.append(Runner.queue_generation.set(generation))
    tx.update("runner", Runner(runner.token_hash), actions,
              runner_session_live(str(runner.session_hash), moment + min_left) & runner_idle())


def start(runner: RunnerRecord, job_id: int) -> bool:
    """The runner begins processing the job it holds; False if it no longer holds it or it was aborted."""
    return _update(Runner(runner.token_hash), [Runner.in_process.set(True)],
                   runner_holds_job(job_id) & runner_not_aborted())


def progress(runner: RunnerRecord, job_id: int, value: float) -> bool:
    """Store the progress of the held job (read by the event stream from the runner row)."""
    return _update(Runner(runner.token_hash), [Runner.progress.set(value)], runner_holds_job(job_id))


@dataclass(frozen=True)
class Lease:
    """Authenticate a deferred-lease call inside the transition and extend its lease."""

    session_hash: str
    moment: float
    expires_at: float


def finish(runner: RunnerRecord, job_id: int, user_id: int, *, result_key: str | None = None,
           error_msg: str | None = None, lease: Lease | None = None) -> Outcome:
    """The runner's job ends: succeeded (``result_key``: the stored result the transcripts come
    from) or failed (``error_msg``). Only while the runner holds the job; it is idle after."""
    actions = [Job.finish_timestamp.set(now()), Job.finished.set(FINISHED), Job.runner_key.remove(),
               Job.queue.remove(), Job.queue_pos.remove(), Job.audio_key.remove()]
    if error_msg is not None or result_key is None:
        actions.append(Job.error_msg.set(error_msg or "unknown error"))
    else:
        actions += [Job.downloaded.set(False), Job.has_transcript.set(True), Job.result_key.set(result_key)]
    runner_actions = [f.remove() for f in job_fields()]
    runner_condition = runner_holds_job(job_id)
    if lease is not None:
        runner_actions.append(Runner.expires_at.set(lease.expires_at))
        runner_condition = runner_condition & runner_session_live(lease.session_hash, lease.moment)
    tx = Tx()
    tx.update("job", Job(job_id), actions, job_held_by(runner.token_hash))
    tx.update("runner", Runner(runner.token_hash), runner_actions, runner_condition)
    tx.event(user_id, JOB_UPDATED, job_id)
    tx.let_go(user_id, job_id, runner.token_hash)
    return _run(tx)


def let_go(runner: RunnerRecord, job_id: int) -> bool:
    """The runner forgets a job that is no longer its own (finished, deleted, taken back)."""
    return _update(Runner(runner.token_hash), [f.remove() for f in job_fields()], runner_holds_job(job_id))


def fail_queued(job: JobRecord, error_msg: str) -> bool:
    """A job waiting in the queue fails (an abort the assignment loop finds)."""
    tx = Tx()
    tx.update("job", Job(job.id), _job_failed(error_msg), job_still_queued())
    tx.event(job.user_id, JOB_UPDATED, job.id)
    tx.let_go(job.user_id, job.id, QUEUE)
    return _run(tx).done


# ------------------------------------------------------------------------------------------
# Aborting
# ------------------------------------------------------------------------------------------


def abort_unheld(job: JobRecord) -> bool:
    """A job no runner holds (queued, or not queued) fails at once."""
    tx = Tx()
    tx.update("job", Job(job.id), _job_failed(ABORTED), job_unheld())
    tx.event(job.user_id, JOB_UPDATED, job.id)
    tx.let_go(job.user_id, job.id, QUEUE)
    return _run(tx).done


def abort_working(job: JobRecord, runner: RunnerRecord) -> bool:
    """A job its runner is processing: flag it; the runner learns of it with its next heartbeat and
    submits the error (``finish``)."""
    tx = Tx()
    tx.update("job", Job(job.id), [Job.aborting.set(True), Job.audio_key.remove()], job_held_by(runner.token_hash))
    tx.update("runner", Runner(runner.token_hash), [Runner.abort.set(True)],
              runner_holds_job(job.id) & runner_processing())
    tx.event(job.user_id, JOB_UPDATED, job.id)
    return _run(tx).done


def abort_waiting(job: JobRecord, runner: RunnerRecord | None, *, runner_live: bool) -> bool:
    """A job assigned but not started (or whose runner is gone): taken from its runner and failed."""
    key = str(job.runner_key)
    tx = Tx()
    tx.update("job", Job(job.id), [f.remove() for f in _job_runner_fields()] + _job_failed(ABORTED),
              job_held_by(key))
    if runner is not None and runner.job_id == job.id:
        condition = runner_holds_job(job.id)
        if runner_live:
            condition = condition & runner_not_processing()
        tx.update("runner", Runner(key), [f.remove() for f in job_fields()], condition)
    tx.event(job.user_id, JOB_UPDATED, job.id)
    tx.let_go(job.user_id, job.id, key)
    return _run(tx).done


def stop_for_deletion(runner: RunnerRecord, job_id: int) -> None:
    """The owner's account goes: a processing runner is told to stop (its result then finds no
    job), a waiting one lets go at once."""
    if runner.in_process:
        # it keeps only what it needs to be told to stop: nothing of the person stays on its row
        personal = [Runner.job_user_id, Runner.job_settings, Runner.job_audio_key, Runner.job_email_notification,
                    Runner.job_file_name]
        _update(Runner(runner.token_hash), [Runner.abort.set(True)] + [f.remove() for f in personal],
                runner_holds_job(job_id))
    else:
        _update(Runner(runner.token_hash), [f.remove() for f in job_fields()],
                runner_holds_job(job_id) & runner_not_processing())


# ------------------------------------------------------------------------------------------
# Releasing a runner: its job goes back to the queue (or fails), it goes idle or offline
# ------------------------------------------------------------------------------------------


class Released(enum.Enum):
    NOTHING = "the runner held no job"
    REQUEUED = "its job went back to the queue"
    FAILED = "its job failed"
    RACE = "something changed meanwhile; nothing was written"


def release(runner: RunnerRecord, job: JobRecord | None, *, go_offline: bool, expired_at: float | None = None,
            queue_pos: float | None = None, fail_with: str | None = None) -> Released:
    """The runner lets go of its job and, with ``go_offline``, goes offline.

    ``expired_at``: only if its lease ended by then (the sweeper, a late call). The job, if the
    runner still holds it, goes back to the queue at ``queue_pos`` (``requeue``), or fails with
    ``fail_with`` (an abort, too many hand-outs)."""
    runner_actions = [f.remove() for f in job_fields()]
    if go_offline:
        runner_actions += [f.remove() for f in online_fields()]
    condition = runner_exists()
    if expired_at is not None:
        condition = condition & runner_lease_over(expired_at)
    tx = Tx()
    outcome = Released.NOTHING
    if runner.job_id is None:
        condition = condition & runner_idle()
    else:
        condition = condition & runner_holds_job(runner.job_id)
        if job is not None and job.runner_key == runner.token_hash and job.finish_timestamp is None:
            outcome = requeue(tx, job, runner, queue_pos=queue_pos, fail_with=fail_with)
    tx.update("runner", Runner(runner.token_hash), runner_actions, condition)
    if not _run(tx).done:
        return Released.RACE
    return outcome


def requeue(tx: Tx, job: JobRecord, runner: RunnerRecord, *, queue_pos: float | None,
            fail_with: str | None) -> Released:
    """Add to ``tx``: the held ``job`` goes back to the queue at ``queue_pos``, or fails with
    ``fail_with``; its runner lets go of it."""
    actions = [f.remove() for f in _job_runner_fields()]
    if fail_with is not None or queue_pos is None:
        actions += _job_failed(fail_with or ABORTED)
        outcome = Released.FAILED
    else:
        actions += [Job.queue.set(QUEUED), Job.queue_pos.set(queue_pos)]
        tx.hold(job.user_id, job.id, QUEUE)
        outcome = Released.REQUEUED
    tx.update("job", Job(job.id), actions, job_held_by(runner.token_hash))
    tx.event(job.user_id, JOB_UPDATED, job.id)
    tx.let_go(job.user_id, job.id, runner.token_hash)
    return outcome


# ------------------------------------------------------------------------------------------
# Downloads and deletion
# ------------------------------------------------------------------------------------------


def mark_downloaded(user_id: int, job_id: int) -> bool:
    """The first download of a succeeded job (with its ``job_updated``); False if the job is not
    the user's, did not succeed, or was downloaded before."""
    tx = Tx()
    tx.update("job", Job(job_id), [Job.downloaded.set(True)], job_awaits_first_download(user_id))
    tx.event(user_id, JOB_UPDATED, job_id)
    return _run(tx).done


def delete(jobs: list[JobRecord], *, announce: bool = True) -> None:
    """Delete job rows (their files and settings are the caller's), with a ``job_deleted`` each."""
    with Job.batch_write() as batch:
        for job in jobs:
            batch.delete(Job(job.id))
    if announce:
        by_user: dict[int, list[tuple[str, int]]] = {}
        for job in jobs:
            by_user.setdefault(job.user_id, []).append((JOB_DELETED, job.id))
        transact.publish(by_user)


def announce(user_id: int, event: str, job_ids: list[int]) -> None:
    """Append events that no row change carries (one UpdateItem)."""
    transact.publish({int(user_id): [(event, int(j)) for j in job_ids]})


def delete_log(user_id: int) -> None:
    """Remove the user's event log (the account is being deleted; its jobs are gone already)."""
    from . import events

    events.delete(user_id)
