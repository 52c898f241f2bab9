"""Queue metrics for runner auto-scaling (infra/README.md "Scaling").

Every minute the backend publishes, per stage, in the CloudWatch namespace ``Wisp``:

* ``QueuedJobs``   — jobs waiting for a runner (pending, not assigned);
* ``BusyRunners``  — online runners that hold a job;
* ``DesiredRunners`` — the runner count the ECS service should have now (``scaling_target``).

The stack's alarms read ``DesiredRunners``: one sets the service's desired count to it while it is
≥ 1 (exact capacity, so a repeated alarm never over-provisions); the other sets it to 0 once it has
been 0 for the configured idle minutes (``should_scale_to_zero`` is the same rule in Python).

The arithmetic is in pure functions so it can be tested without AWS; ``publish_queue_metrics`` is the
one entry point a scheduled function calls.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import aws

NAMESPACE = "Wisp"
METRIC_QUEUED = "QueuedJobs"
METRIC_BUSY = "BusyRunners"
METRIC_DESIRED = "DesiredRunners"

# Set by the deployed stack (infra/build.py); the defaults suit the local stack.
ENV_STAGE = "WISP_STAGE"
ENV_MAX_RUNNERS = "WISP_MAX_RUNNERS"
ENV_JOBS_PER_RUNNER = "WISP_JOBS_PER_RUNNER"


@dataclass(frozen=True)
class QueueSnapshot:
    queued: int  # jobs waiting for a runner
    busy: int  # online runners holding a job
    idle: int = 0  # online runners without a job


@dataclass(frozen=True)
class ScalingConfig:
    stage: str
    max_runners: int
    jobs_per_runner: int

    @classmethod
    def from_env(cls) -> "ScalingConfig":
        return cls(
            stage=os.environ.get(ENV_STAGE, "local"),
            max_runners=int(os.environ.get(ENV_MAX_RUNNERS, "1")),
            jobs_per_runner=int(os.environ.get(ENV_JOBS_PER_RUNNER, "1")),
        )


# --------------------------------------------------------------------------------------------
# Scaling arithmetic (pure)
# --------------------------------------------------------------------------------------------


def desired_runners(*, queued: int, busy: int, max_runners: int, jobs_per_runner: int) -> int:
    """Runners needed for the work in sight: every busy runner, plus one per ``jobs_per_runner``
    waiting jobs, never more than ``max_runners``."""
    if jobs_per_runner < 1:
        raise ValueError("jobs_per_runner must be at least 1")
    needed = math.ceil(max(queued, 0) / jobs_per_runner) + max(busy, 0)
    return max(0, min(max_runners, needed))


def scaling_target(snapshot: QueueSnapshot, *, max_runners: int, jobs_per_runner: int) -> int:
    """The value published as ``DesiredRunners``.

    While there is work (a queued job or a busy runner), runners that are already online stay:
    ECS picks arbitrary tasks when it scales in, so shrinking while anyone works could stop a busy
    runner. With no work at all the target is 0, and the idle alarm scales to zero only after the
    idle time (``should_scale_to_zero``).
    """
    if snapshot.queued <= 0 and snapshot.busy <= 0:
        return 0
    wanted = desired_runners(queued=snapshot.queued, busy=snapshot.busy,
                             max_runners=max_runners, jobs_per_runner=jobs_per_runner)
    return min(max_runners, max(wanted, snapshot.busy + snapshot.idle))


def should_scale_to_zero(recent_targets: Sequence[int | None], *, idle_minutes: int) -> bool:
    """The idle alarm's rule: the last ``idle_minutes`` one-minute values were all 0 or missing.

    A missing value counts as idle (the alarm treats missing data as breaching), so a stack whose
    metric publisher is broken does not keep GPU instances running.
    """
    if idle_minutes < 1:
        raise ValueError("idle_minutes must be at least 1")
    window = list(recent_targets)[-idle_minutes:]
    if len(window) < idle_minutes:
        return False
    return all(value is None or value < 1 for value in window)


# --------------------------------------------------------------------------------------------
# Reading the queue
# --------------------------------------------------------------------------------------------


def read_snapshot(*, now: float | None = None) -> QueueSnapshot:
    """Pending jobs and online runners from the store, with two Queries and no Scan.

    Queued jobs are the sparse ``queue`` GSI of the jobs table (a job carries the attribute only
    while it waits for a runner). Online runners are the sparse ``online`` GSI of the runners table,
    leases still running at ``now``; a runner holding a job is busy, the others are idle.
    """
    from ..store import jobs, runners

    moment = time.time() if now is None else now
    queued = jobs.queued_count()
    online = runners.online_after(moment)
    busy = sum(1 for runner in online if runner.job_id is not None)
    return QueueSnapshot(queued=queued, busy=busy, idle=len(online) - busy)


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------


def metric_data(snapshot: QueueSnapshot, config: ScalingConfig, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The ``MetricData`` list for one ``put_metric_data`` call."""
    stamp = now or datetime.now(timezone.utc)
    dimensions = [{"Name": "Stage", "Value": config.stage}]
    target = scaling_target(snapshot, max_runners=config.max_runners, jobs_per_runner=config.jobs_per_runner)
    values = ((METRIC_QUEUED, snapshot.queued), (METRIC_BUSY, snapshot.busy), (METRIC_DESIRED, target))
    return [
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": stamp, "Value": float(value), "Unit": "Count"}
        for name, value in values
    ]


def publish(snapshot: QueueSnapshot, config: ScalingConfig, *, now: datetime | None = None) -> int:
    """Publish the three metrics; returns the ``DesiredRunners`` value sent."""
    data = metric_data(snapshot, config, now=now)
    aws.client("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=data)
    return int(data[-1]["Value"])


def publish_queue_metrics(
    *, reader: Callable[[], QueueSnapshot] | None = None, config: ScalingConfig | None = None
) -> QueueSnapshot:
    """Entry point for the one-minute schedule: read the queue, publish the metrics."""
    snapshot = (reader or read_snapshot)()
    publish(snapshot, config or ScalingConfig.from_env())
    return snapshot
