"""Runner leases (spec §6.2, §6.4): a runner is online while its lease lies in the future.

Every ``runner+S`` call is authenticated by the one conditional UpdateItem that extends the lease
(``renew``), and that update also makes the call's own change to the runner row where the route
declares one (``LeaseWork``: a heartbeat's progress, the "processing" mark of retrieve_job_audio),
so those calls cost one request. A call whose own transaction rewrites the row (a result) is
authenticated by reading the row instead (``read``); its transaction extends the lease.

Once a lease has run out the runner stays offline until it registers again, and whoever notices
first (the sweeper, its own next call, its re-registration) lets go of its job (``release``): the
job goes back to the queue, behind the jobs queued so far, or fails once it was handed out
``MAX_HANDOUTS`` times without a result, whatever the cause (runner crash, out of memory, a file
that kills the runner), so no job loops and none blocks the queue.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..store import jobs as job_store
from ..store import lifecycle
from ..store.counters import JOB, current
from ..store.lifecycle import LeaseWork, Released
from ..store.runners import RunnerRecord

LEASE_SECONDS = 60.0  # a runner silent this long is offline (spec §6.2)
MIN_LEASE_LEFT = 1.0  # never hand a job to a runner whose lease ends within this
MAX_HANDOUTS = 3  # a job handed out this often without a result fails


def gave_up_message(handouts: int) -> str:
    return (f"This job was given to a runner {handouts} times without a result (the runner stopped, ran out of "
            "memory, or could not process the file), so Wisp gave up on it")


def clock() -> float:
    """Seconds since the epoch; one place so tests can move time."""
    return time.time()


def is_live(runner: RunnerRecord | None, moment: float | None = None) -> bool:
    return runner is not None and runner.live(clock() if moment is None else moment)


@dataclass
class RunnerPrincipal:
    """An authenticated runner call; ``runner`` is the row as of the gate's lease renewal.

    ``worked``: the gate's update also made the route's ``LeaseWork`` change. ``lease_deferred``:
    the gate only read the row (``DEFER``), together with the job counter's ``queue_generation``;
    the handler's own transaction must extend the lease on the authentication's conditions."""

    runner: RunnerRecord
    worked: bool = False
    lease_deferred: bool = False
    queue_generation: int | None = None

    @property
    def token_hash(self) -> str:
        return self.runner.token_hash


DEFER = LeaseWork({}, None)  # authenticate by reading; the handler's transaction extends the lease


def renew(token_hash: str, session_hash: str, work: LeaseWork | None = None) -> RunnerPrincipal | None:
    """Authenticate and extend the lease (with ``work`` if it can); None if any check fails."""
    moment = clock()
    renewed = lifecycle.renew_lease(token_hash, session_hash=session_hash, moment=moment,
                                    expires_at=moment + LEASE_SECONDS, work=work)
    return None if renewed is None else RunnerPrincipal(renewed.runner, worked=renewed.worked)


def read(token_hash: str, session_hash: str) -> RunnerPrincipal | None:
    """Authenticate a ``DEFER`` call by reading the runner row and the job counter in one strongly
    consistent BatchGetItem. None if any check fails."""
    from ..store.runners import get_with_queue_generation

    runner, generation = get_with_queue_generation(token_hash)
    if runner is None or not is_live(runner) or runner.session_hash != session_hash:
        return None
    return RunnerPrincipal(runner, lease_deferred=True, queue_generation=generation)


def deferred_lease(principal: RunnerPrincipal) -> lifecycle.Lease | None:
    """For a ``DEFER`` call's transition: authenticate again and extend the lease there."""
    if not principal.lease_deferred:
        return None
    moment = clock()
    return lifecycle.Lease(str(principal.runner.session_hash), moment, moment + LEASE_SECONDS)


def release(runner: RunnerRecord, *, go_offline: bool, require_expired: bool = False) -> Released:
    """The runner lets go of its job (back to the queue, or failed: aborted, or handed out too
    often) and, with ``go_offline``, goes offline. The caller then triggers an assignment."""
    job = job_store.get(int(runner.job_id)) if runner.job_id is not None else None
    fail_with: str | None = None
    queue_pos: float | None = None
    if job is not None:
        if job.aborting or runner.abort:
            fail_with = lifecycle.ABORTED
        elif job.handouts >= MAX_HANDOUTS:
            fail_with = gave_up_message(job.handouts)
        else:
            queue_pos = current(JOB) + 0.5  # behind every job queued so far, ahead of later ones
    released = lifecycle.release(runner, job, go_offline=go_offline, queue_pos=queue_pos, fail_with=fail_with,
                                 expired_at=clock() if require_expired else None)
    if released is Released.REQUEUED:
        lifecycle.raise_queue_generation()  # busy runners look at the queue when they finish
    return released
