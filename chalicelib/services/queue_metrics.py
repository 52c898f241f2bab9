"""The CloudWatch metrics of the runner fleet (infra/README.md "Scaling").

Every minute the sweep schedule publishes, per stage (dimension ``Stage``), in the namespace
``Wisp``, what ``services/scaling.py`` saw and decided:

* ``QueuedJobs``: jobs waiting for a runner;
* ``BusyRunners``: online runners that hold a job;
* ``DesiredRunners``: the runner count the application set for the ECS service;
* ``OldestQueuedJobAgeSeconds``: age of the job at the head of the queue (0 when it is empty);
* ``GpuBudgetExhausted``: 1 while the daily GPU-hour budget is used up (no new runners start), else 0.

The stack's alarms watch the last two; nothing scales on these metrics any more.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import aws

NAMESPACE = "Wisp"
METRIC_QUEUED = "QueuedJobs"
METRIC_BUSY = "BusyRunners"
METRIC_DESIRED = "DesiredRunners"
METRIC_OLDEST_AGE = "OldestQueuedJobAgeSeconds"
METRIC_BUDGET_EXHAUSTED = "GpuBudgetExhausted"


@dataclass(frozen=True)
class FleetMetrics:
    queued: int
    busy: int
    desired: int
    oldest_queued_age: float  # seconds
    budget_exhausted: bool


def metric_data(values: FleetMetrics, *, stage: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The ``MetricData`` list for one ``put_metric_data`` call."""
    stamp = now or datetime.now(timezone.utc)
    dimensions = [{"Name": "Stage", "Value": stage}]
    rows: list[tuple[str, float, str]] = [
        (METRIC_QUEUED, values.queued, "Count"),
        (METRIC_BUSY, values.busy, "Count"),
        (METRIC_DESIRED, values.desired, "Count"),
        (METRIC_OLDEST_AGE, round(max(values.oldest_queued_age, 0.0), 1), "Seconds"),
        (METRIC_BUDGET_EXHAUSTED, 1 if values.budget_exhausted else 0, "Count"),
    ]
    return [
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": stamp, "Value": float(value), "Unit": unit}
        for name, value, unit in rows
    ]


def publish(values: FleetMetrics, *, stage: str, now: datetime | None = None) -> None:
    """Put the five metrics (one PutMetricData request)."""
    aws.client("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=metric_data(values, stage=stage, now=now))
