"""The runner fleet: the application sets the ECS service's desired count itself.

``tick`` runs every minute in the sweep schedule (also when the sweep itself failed) and ``kick`` on
the submit path when no runner is online. Both call ``ecs:UpdateService`` only when the count
changes. Without ``WISP_RUNNER_CLUSTER``/``WISP_RUNNER_SERVICE`` (local stack, tests) no ECS call is
made; the decision is still taken and published.

The decision (``decide``) is a pure function of one minute's ``Snapshot`` and what the last minutes
left behind (``store.fleet.FleetRecord``):

* **Out, at once.** ``need`` = busy runners + one runner per ``jobs_per_runner`` queued jobs, at
  most ``max_runners``. When that is more than the service has or is starting (its desired count,
  the tasks it runs), the count becomes ``need``.
* **In, only after the grace window.** The count never drops below the highest ``need`` of the last
  ``idle_minutes``, nor below the busy runners plus the tasks that are still starting (running or
  pending in the service, not registered yet). A task that stays unregistered for
  ``STARTUP_MINUTES`` is no longer counted as starting (it is stuck, and may go). Until the loop has
  watched a whole window (after a deploy, or after it did not run for a while) it scales in nothing.
  ECS chooses which task to stop; a runner holding a job has ECS task scale-in protection
  (``runner_image/wisp_runner/protection.py``), so the choice falls on an idle or starting one.
* **GPU budget.** With ``WISP_GPU_HOURS_PER_DAY`` set, the runner task time of the UTC day is
  counted; once it reaches the budget the count never rises above what the service already has.
  Busy runners keep working, and idle ones go as usual.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from .. import aws
from ..store import fleet as fleet_store
from ..store import jobs as job_store
from ..store import runners as runner_store
from ..store.fleet import FleetRecord
from . import leases, queue_metrics

log = logging.getLogger("wisp.scaling")

# Set by the deployed stack (infra/build.py); the defaults suit the local stack.
ENV_STAGE = "WISP_STAGE"
ENV_MAX_RUNNERS = "WISP_MAX_RUNNERS"
ENV_JOBS_PER_RUNNER = "WISP_JOBS_PER_RUNNER"
ENV_IDLE_MINUTES = "WISP_IDLE_MINUTES"
ENV_GPU_HOURS_PER_DAY = "WISP_GPU_HOURS_PER_DAY"
ENV_CLUSTER = "WISP_RUNNER_CLUSTER"
ENV_SERVICE = "WISP_RUNNER_SERVICE"

DEFAULT_IDLE_MINUTES = 15.0
# A task unregistered for this long is stuck, not starting (a GPU instance boots and pulls the
# image in 3-6 minutes).
STARTUP_MINUTES = 20.0
# Ticks further apart than this break the observation: the grace window starts again.
GAP_SECONDS = 300.0
TICK_SECONDS = 60.0
# kick() after seeing the service above zero: no DescribeServices for this long (per container).
KICK_QUIET_SECONDS = 60.0


@dataclass(frozen=True)
class ScalingConfig:
    stage: str = "local"
    max_runners: int = 1
    jobs_per_runner: int = 1
    idle_minutes: float = DEFAULT_IDLE_MINUTES  # grace window before idle capacity goes
    gpu_hours_per_day: float = 0.0  # 0: no budget
    cluster: str | None = None  # ECS cluster and service of the runners; None: no ECS calls
    service: str | None = None

    @classmethod
    def from_env(cls) -> ScalingConfig:
        env = os.environ
        return cls(
            stage=env.get(ENV_STAGE, "local"),
            max_runners=int(env.get(ENV_MAX_RUNNERS) or 1),
            jobs_per_runner=int(env.get(ENV_JOBS_PER_RUNNER) or 1),
            idle_minutes=float(env.get(ENV_IDLE_MINUTES) or DEFAULT_IDLE_MINUTES),
            gpu_hours_per_day=float(env.get(ENV_GPU_HOURS_PER_DAY) or 0),
            cluster=env.get(ENV_CLUSTER) or None,
            service=env.get(ENV_SERVICE) or None,
        )

    @property
    def has_service(self) -> bool:
        return bool(self.cluster and self.service)

    @property
    def gpu_budget_seconds(self) -> float | None:
        return self.gpu_hours_per_day * 3600 if self.gpu_hours_per_day > 0 else None


@dataclass(frozen=True)
class Snapshot:
    """The fleet in one minute."""

    queued: int  # jobs waiting for a runner
    busy: int  # online runners holding a job
    idle: int  # online runners without a job
    tasks: int  # tasks the service runs or starts (ECS desired status RUNNING)
    desired: int  # the service's desired count now
    oldest_queued_age: float = 0.0  # seconds the job at the head of the queue has waited

    @property
    def online(self) -> int:
        return self.busy + self.idle


@dataclass(frozen=True)
class Decision:
    target: int  # the desired count the service should have
    need: int  # runners the work in sight needs now
    starting: int  # tasks counted as starting (protected from scale-in)
    action: str  # "out", "in", "hold", "restore" (back up to busy + starting) or "budget" (out refused)
    memory: FleetRecord  # what the next minute starts from


def runners_needed(*, queued: int, busy: int, max_runners: int, jobs_per_runner: int) -> int:
    """Every busy runner, plus one per ``jobs_per_runner`` waiting jobs, never more than ``max_runners``."""
    if jobs_per_runner < 1:
        raise ValueError("jobs_per_runner must be at least 1")
    return max(0, min(max_runners, max(busy, 0) + math.ceil(max(queued, 0) / jobs_per_runner)))


def decide(snapshot: Snapshot, memory: FleetRecord, config: ScalingConfig, *, now: float,
           budget_exhausted: bool = False) -> Decision:
    """The desired count for this minute, and the memory for the next one (see the module doc)."""
    need = runners_needed(queued=snapshot.queued, busy=snapshot.busy, max_runners=config.max_runners,
                          jobs_per_runner=config.jobs_per_runner)
    unregistered = max(0, snapshot.tasks - snapshot.online)
    starting_since = None
    if unregistered:
        starting_since = memory.starting_since if memory.starting_since is not None else now
    starting = unregistered if starting_since is not None and now - starting_since < STARTUP_MINUTES * 60 else 0

    floor = snapshot.busy + starting  # never stop a working runner or one that is starting
    # a task counts as needed while it starts, so a runner's grace time begins when it registers idle
    wanted = max(need, floor)
    window = config.idle_minutes * 60
    last_seen = memory.demand[-1][0] if memory.demand else None
    unbroken = last_seen is not None and memory.observed_since is not None and 0 <= now - last_seen <= GAP_SECONDS
    observed_since = memory.observed_since if unbroken and memory.observed_since is not None else now
    recent = tuple(entry for entry in (memory.demand if unbroken else ()) if entry[0] >= now - window)
    demand = recent + ((now, wanted),)
    held = max(n for _, n in demand)
    if now - observed_since < window:
        held = max(held, snapshot.desired)  # not watched for a whole window yet: nothing goes

    capacity = max(snapshot.desired, snapshot.online + unregistered)
    if need > capacity and not budget_exhausted:
        target, action = need, "out"
    else:
        target = max(floor, min(snapshot.desired, held))
        target = min(target, max(config.max_runners, floor))
        if need > capacity:
            action = "budget"
        elif target < snapshot.desired:
            action = "in"
        elif target > snapshot.desired:
            action = "restore"
        else:
            action = "hold"

    quiet = target == 0 and snapshot.desired == 0 and snapshot.tasks == 0 and snapshot.online == 0 and not snapshot.queued
    if quiet:  # nothing runs and nothing waits: nothing to remember (and no write)
        kept = FleetRecord(version=memory.version)
    else:
        kept = dataclasses.replace(memory, demand=demand, observed_since=observed_since,
                                   starting_since=starting_since)
    return Decision(target=target, need=need, starting=starting, action=action, memory=kept)


# --------------------------------------------------------------------------------------------
# Reading the fleet
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueView:
    queued: int
    busy: int
    idle: int
    oldest_queued_age: float


def read_queue(moment: float) -> QueueView:
    """Queued jobs and online runners, with Queries only (no Scan): the head of the sparse ``queue``
    index (its age), the queue's length only when it is not empty (a COUNT query), and the sparse
    ``online`` index of the runners table (leases running at ``moment``)."""
    head = job_store.pending(1)
    queued = max(job_store.queued_count(), len(head)) if head else 0
    oldest = max(0.0, moment - head[0].creation_timestamp.timestamp()) if head else 0.0
    online = runner_store.online_after(moment)
    busy = sum(1 for runner in online if runner.job_id is not None)
    return QueueView(queued=queued, busy=busy, idle=len(online) - busy, oldest_queued_age=oldest)


@dataclass(frozen=True)
class ServiceView:
    desired: int
    tasks: int


def read_service(config: ScalingConfig) -> ServiceView:
    """The service's desired count and its tasks that ECS wants running (ecs:DescribeServices, and
    ecs:ListTasks unless the service is at zero). Listing counts the tasks still waiting for an
    instance (PROVISIONING), which the service's running and pending counts leave out."""
    ecs = aws.client("ecs")
    found = ecs.describe_services(cluster=config.cluster, services=[config.service]).get("services") or []
    if not found:
        raise RuntimeError(f"ECS service {config.service!r} not found in cluster {config.cluster!r}")
    service = found[0]
    desired = int(service.get("desiredCount") or 0)
    tasks = int(service.get("runningCount") or 0) + int(service.get("pendingCount") or 0)
    if desired or tasks:
        pages = ecs.get_paginator("list_tasks").paginate(cluster=config.cluster, serviceName=config.service,
                                                         desiredStatus="RUNNING")
        tasks = sum(len(page.get("taskArns") or []) for page in pages)
    return ServiceView(desired=desired, tasks=tasks)


def set_desired(config: ScalingConfig, count: int) -> None:
    """ecs:UpdateService with the new desired count."""
    aws.client("ecs").update_service(cluster=config.cluster, service=config.service, desiredCount=count)


# --------------------------------------------------------------------------------------------
# The one-minute tick and the kick on submit
# --------------------------------------------------------------------------------------------


def utc_day(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d")


def tick(*, config: ScalingConfig | None = None, now: float | None = None) -> Decision:
    """Read the fleet, count the GPU time, set the desired count, publish the metrics, remember."""
    config = config or ScalingConfig.from_env()
    moment = leases.clock() if now is None else now
    queue = read_queue(moment)
    service = read_service(config) if config.has_service else None
    day = utc_day(moment)
    memory, used = fleet_store.load(day)
    tasks = service.tasks if service is not None else queue.busy + queue.idle
    # without ECS there is no service to read: the fleet is what is online
    desired = service.desired if service is not None else tasks

    budget = config.gpu_budget_seconds
    counted = 0.0
    if budget is not None:
        counted = tasks * _elapsed(memory.counted_until, moment)
        used += counted
    exhausted = budget is not None and used >= budget

    snapshot = Snapshot(queued=queue.queued, busy=queue.busy, idle=queue.idle, tasks=tasks, desired=desired,
                        oldest_queued_age=queue.oldest_queued_age)
    decision = decide(snapshot, memory, config, now=moment, budget_exhausted=exhausted)
    if decision.action == "budget":
        log.warning("GPU budget of %.1f h for %s is used up (%.2f h): no new runner starts; %d job(s) wait",
                    config.gpu_hours_per_day, day, used / 3600, queue.queued)
    if service is not None and decision.target != service.desired:
        log.info("runners: desired count %d -> %d (%s; %d queued, %d busy, %d idle, %d starting)",
                 service.desired, decision.target, decision.action, queue.queued, queue.busy, queue.idle,
                 decision.starting)
        set_desired(config, decision.target)
        _kick_memo.seen_up(decision.target > 0)
    queue_metrics.publish(queue_metrics.FleetMetrics(
        queued=queue.queued, busy=queue.busy, desired=decision.target,
        oldest_queued_age=queue.oldest_queued_age, budget_exhausted=exhausted,
    ), stage=config.stage)

    remembered = decision.memory
    if budget is not None and remembered.demand:
        remembered = dataclasses.replace(remembered, counted_until=moment)
    if remembered != memory and fleet_store.save(remembered) and counted > 0:
        fleet_store.add_gpu_seconds(day, counted)  # only the sweep that saved the clock counts
    return decision


def _elapsed(counted_until: float | None, moment: float) -> float:
    """Seconds to count since the last tick: one tick's worth after a gap (or the first time)."""
    if counted_until is None or not 0 <= moment - counted_until <= GAP_SECONDS:
        return TICK_SECONDS
    return moment - counted_until


class _KickMemo:
    """When this container last saw the service above zero (so kick() can skip DescribeServices)."""

    def __init__(self) -> None:
        self.up_at: float | None = None

    def seen_up(self, up: bool) -> None:
        self.up_at = time.monotonic() if up else None

    def recently_up(self) -> bool:
        return self.up_at is not None and time.monotonic() - self.up_at < KICK_QUIET_SECONDS


_kick_memo = _KickMemo()


def reset_kick_memo() -> None:
    """Forget what kick() saw (tests)."""
    _kick_memo.seen_up(False)


def kick(*, config: ScalingConfig | None = None) -> int | None:
    """A job was queued while no runner is online: if the service is at zero, start runners now
    instead of at the next tick (to the queue's need, at least one). Returns the new desired count,
    or None when nothing changed. Never raises: the tick tries again within a minute.

    Costs one DescribeServices per submit while the service is at zero or starting (none while this
    container saw it above zero in the last minute); the queue and the GPU budget are read only when
    runners are actually started."""
    config = config or ScalingConfig.from_env()
    if not config.has_service or config.max_runners < 1 or _kick_memo.recently_up():
        return None
    try:
        service = aws.client("ecs").describe_services(cluster=config.cluster, services=[config.service])
        found = service.get("services") or []
        if not found:
            log.error("kick: ECS service %r not found in cluster %r", config.service, config.cluster)
            return None
        if int(found[0].get("desiredCount") or 0) > 0:
            _kick_memo.seen_up(True)
            return None
        budget = config.gpu_budget_seconds
        if budget is not None:
            moment = leases.clock()
            if fleet_store.gpu_seconds(utc_day(moment)) >= budget:
                log.warning("GPU budget of %.1f h is used up: no runner starts for the new job",
                            config.gpu_hours_per_day)
                return None
        target = max(1, runners_needed(queued=job_store.queued_count(), busy=0, max_runners=config.max_runners,
                                       jobs_per_runner=config.jobs_per_runner))
        log.info("runners: desired count 0 -> %d (a job was queued with no runner online)", target)
        set_desired(config, target)
        _kick_memo.seen_up(True)
        return target
    except Exception:  # noqa: BLE001 - a submit never fails for this; the tick scales within a minute
        log.exception("kick: starting runners failed")
        return None
