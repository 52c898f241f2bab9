"""Which runner gets which job (spec §6.3): strict FIFO by queue position, runner priority only
picks the runner. The hand-over itself is ``lifecycle.assign``, atomic on both rows."""
from __future__ import annotations

import logging

from ..schemas.jobs import application_defaults
from ..store import jobs as job_store
from ..store import lifecycle
from ..store import runners as runner_store
from ..store.jobs import JobRecord
from ..store.lifecycle import NewJob, Outcome
from ..store.runners import RunnerRecord
from . import leases, scaling
from .leases import LEASE_SECONDS, MIN_LEASE_LEFT, is_live

log = logging.getLogger("wisp.assignment")

PENDING_PAGE = 10


def _settings(job: JobRecord | NewJob) -> dict:
    return job.settings if job.settings is not None else application_defaults().model_dump(mode="json")


def try_assign(job: JobRecord, runner: RunnerRecord, *, generation: int | None = None) -> Outcome:
    """One attempt to hand the queued ``job`` to the idle ``runner``."""
    moment = leases.clock()
    return lifecycle.assign(job, runner, settings=_settings(job), moment=moment, min_left=MIN_LEASE_LEFT,
                            expires_at=moment + LEASE_SECONDS, generation=generation)


def assign_pending(*, new_job: JobRecord | None = None, idle_runner: RunnerRecord | None = None,
                   max_assignments: int = 1, queue_generation: int | None = None) -> list[int]:
    """Hand the first pending jobs to the highest-priority idle runners; returns the job ids.

    ``new_job``/``idle_runner`` are rows the caller just wrote: indexes are eventually consistent
    and might not show them yet.

    A runner that has just become idle (``idle_runner``, one assignment) takes the first pending
    job itself, without looking for idle runners of higher priority: any such runner would have
    taken the job already, except in the moment of a race, and then it merely waits for the next
    job. If that job was the whole queue and the caller read the queue generation
    (``queue_generation``) before looking, the runner notes it (see ``place_new_job``)."""
    moment = leases.clock()
    hinted = idle_runner is not None and idle_runner.job_id is None and is_live(idle_runner, moment + MIN_LEASE_LEFT)
    first_page: list[JobRecord] | None = None
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
                lifecycle.fail_queued(job, lifecycle.ABORTED)
                continue
            outcome = try_assign(job, idle_runner, generation=queue_generation if whole_queue else None)
            if outcome.done:
                return [job.id]
            if outcome.runner_changed:
                return []
        return []
    idle = {r.token_hash: r for r in runner_store.idle_after(moment + MIN_LEASE_LEFT)}
    if hinted and idle_runner is not None:
        idle.setdefault(idle_runner.token_hash, idle_runner)
    runners = sorted(idle.values(), key=lambda r: (-int(r.priority or 0), r.id))
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
            seen.add(job.id)
            if job.aborting:
                lifecycle.fail_queued(job, lifecycle.ABORTED)  # safety net; aborts take jobs out of the queue
                continue
            while runners:
                outcome = try_assign(job, runners[0])
                if outcome.done:
                    assigned.append(job.id)
                    runners.pop(0)
                    break
                if outcome.runner_changed:
                    runners.pop(0)
                if outcome.job_changed:
                    break
        if not runners or len(assigned) >= max_assignments or len(jobs) < page:
            break
    return assigned


def _pending(new_job: JobRecord | None, seen: set[int], *, limit: int) -> list[JobRecord]:
    found = {j.id: j for j in job_store.pending(limit + len(seen)) if j.id not in seen}
    if new_job is not None and new_job.is_queued and new_job.id not in seen:
        found.setdefault(new_job.id, new_job)
    return sorted(found.values(), key=lambda j: (float(j.queue_pos if j.queue_pos is not None else j.id), j.id))[:limit]


def place_new_job(job: NewJob, *, queue_generation: int) -> None:
    """Write a new job together with its events: straight to the highest-priority idle runner if
    there is one, else into the queue. One transaction either way.

    ``queue_generation``: the job counter's queue generation read when the job's id was taken.
    A runner given the job directly notes it; when it finishes, it looks at the queue only if the
    generation moved since (see ``after_idle``). So a job queued while runners are online raises
    the generation (one more UpdateItem), after it is in the queue.

    The queue is not read first: it is empty whenever a runner is idle, except in the moment
    between a runner freeing up (or a job being put back) and that trigger's own look at the
    queue. A new job arriving in that moment may start before the older one, which is then
    handed out by the next trigger or the sweeper; it is delayed, never lost or doubled."""
    moment = leases.clock()
    online = runner_store.online_after(moment + MIN_LEASE_LEFT)
    idle = sorted((r for r in online if r.job_id is None), key=lambda r: (-int(r.priority or 0), r.id))
    for runner in idle[:3]:
        moment = leases.clock()
        if lifecycle.create_assigned(job, runner, settings=_settings(job), moment=moment, min_left=MIN_LEASE_LEFT,
                                     expires_at=moment + LEASE_SECONDS, generation=queue_generation).done:
            return
    lifecycle.create(job)
    if online:
        lifecycle.raise_queue_generation()  # busy runners look at the queue when they finish
    else:
        scaling.kick()  # no runner online: start one now if the fleet is at zero, not at the next tick


def after_idle(runner: RunnerRecord, *, queue_generation: int | None = None) -> None:
    """The runner let go of its job: look for the next one (spec §6.3 trigger), unless the queue
    generation read with the row (``queue_generation``) is the one the runner noted when it got
    its job: then no job was queued since, and the queue was empty then (see ``place_new_job``)."""
    noted = runner.queue_generation
    idle = runner.without_job()
    if queue_generation is not None and noted is not None and noted == queue_generation:
        return
    assign_pending(idle_runner=idle, queue_generation=queue_generation)
