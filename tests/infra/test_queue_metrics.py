"""What the backend publishes to CloudWatch every minute, and how it reads the queue for it.

The scaling decision itself is tested in tests/unit/test_scaling.py (recorded minute sequences) and
tests/unit/test_fleet_scaling.py (the ECS service in moto)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from chalicelib.services import queue_metrics as qm
from chalicelib.services import scaling
from chalicelib.services.queue_metrics import FleetMetrics
from chalicelib.services.scaling import ScalingConfig

# The stack's alarms use these names (infra/template.yaml); renaming one breaks them silently.
PUBLISHED = {"QueuedJobs", "BusyRunners", "DesiredRunners", "OldestQueuedJobAgeSeconds", "GpuBudgetExhausted"}


@pytest.fixture
def queue_tables():
    from chalicelib.store import counters, jobs, runners

    for model in (jobs.Job, runners.Runner, counters.Counter):
        model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
    return jobs, runners


def _job(jobs, job_id: int, *, queued: bool, created: datetime | None = None) -> None:
    jobs.Job(id=job_id, user_id=1, file_name=f"{job_id}.mp3", queue=jobs.QUEUED if queued else None,
             queue_pos=job_id if queued else None,
             creation_timestamp=created or datetime.now(timezone.utc)).save()


def _runner(runners, token: str, *, job_id: int | None, expires_at: float) -> None:
    runners.Runner(token_hash=token, id=len(token), online=runners.ONLINE, expires_at=int(expires_at), job_id=job_id).save()


def test_metric_names_units_and_dimension():
    data = qm.metric_data(FleetMetrics(queued=3, busy=1, desired=4, oldest_queued_age=95.25, budget_exhausted=True),
                          stage="prod")
    assert {d["MetricName"] for d in data} == PUBLISHED
    values = {d["MetricName"]: (d["Value"], d["Unit"]) for d in data}
    assert values == {"QueuedJobs": (3.0, "Count"), "BusyRunners": (1.0, "Count"), "DesiredRunners": (4.0, "Count"),
                      "OldestQueuedJobAgeSeconds": (95.2, "Seconds"), "GpuBudgetExhausted": (1.0, "Count")}
    assert all(d["Dimensions"] == [{"Name": "Stage", "Value": "prod"}] for d in data)


def test_read_queue_counts_the_queue_and_online_runners(queue_tables):
    jobs, runners = queue_tables
    now = time.time()
    _job(jobs, 1, queued=True, created=datetime.fromtimestamp(now - 300, timezone.utc))
    for job_id in (2, 3):
        _job(jobs, job_id, queued=True)
    _job(jobs, 4, queued=False)  # assigned: no longer in the queue index
    _runner(runners, "busy", job_id=4, expires_at=now + 60)
    _runner(runners, "idle", job_id=None, expires_at=now + 60)
    _runner(runners, "gone", job_id=None, expires_at=now - 5)  # lease ran out: not online
    view = scaling.read_queue(now)
    assert (view.queued, view.busy, view.idle) == (3, 1, 1)
    assert view.oldest_queued_age == pytest.approx(300, abs=1)  # the head of the queue


def test_read_queue_of_an_empty_queue_is_one_query(queue_tables, monkeypatch):
    jobs, _runners = queue_tables
    monkeypatch.setattr(jobs, "queued_count", lambda: pytest.fail("COUNT query on an empty queue"))
    view = scaling.read_queue(time.time())
    assert (view.queued, view.oldest_queued_age) == (0, 0.0)


def test_read_queue_queries_instead_of_scanning(queue_tables, monkeypatch):
    jobs, runners = queue_tables
    monkeypatch.setattr(jobs.Job, "scan", lambda *a, **k: pytest.fail("Scan on jobs"))
    monkeypatch.setattr(runners.Runner, "scan", lambda *a, **k: pytest.fail("Scan on runners"))
    _job(jobs, 1, queued=True)
    assert scaling.read_queue(time.time()).queued == 1


def test_tick_publishes_the_five_metrics_with_the_stage(queue_tables):
    jobs, runners = queue_tables
    now = time.time()
    for job_id in (1, 2, 3):
        _job(jobs, job_id, queued=True, created=datetime.fromtimestamp(now - 42, timezone.utc))
    _runner(runners, "busy", job_id=9, expires_at=now + 60)
    config = ScalingConfig(stage="prod", max_runners=3, jobs_per_runner=1)  # no ECS service named

    decision = scaling.tick(config=config, now=now)

    assert decision.target == 3  # min(3, 1 busy + 3 queued)
    cw = boto3.client("cloudwatch", region_name="eu-central-1")
    listed = cw.list_metrics(Namespace="Wisp")["Metrics"]
    assert {m["MetricName"] for m in listed} == PUBLISHED
    assert all(m["Dimensions"] == [{"Name": "Stage", "Value": "prod"}] for m in listed)
    expected = {"QueuedJobs": 3.0, "BusyRunners": 1.0, "DesiredRunners": 3.0, "GpuBudgetExhausted": 0.0}
    end = datetime.now(timezone.utc) + timedelta(minutes=1)

    def points(name: str) -> list[float]:
        return [p["Maximum"] for p in cw.get_metric_statistics(
            Namespace="Wisp", MetricName=name, Dimensions=[{"Name": "Stage", "Value": "prod"}],
            StartTime=end - timedelta(minutes=10), EndTime=end, Period=60, Statistics=["Maximum"],
        )["Datapoints"]]

    for name, value in expected.items():
        assert points(name) == [value], name
    [age] = points("OldestQueuedJobAgeSeconds")
    assert 40 <= age <= 45


def test_scaling_config_from_env(monkeypatch):
    monkeypatch.setenv("WISP_STAGE", "prod")
    monkeypatch.setenv("WISP_MAX_RUNNERS", "4")
    monkeypatch.setenv("WISP_JOBS_PER_RUNNER", "2")
    monkeypatch.setenv("WISP_IDLE_MINUTES", "10")
    monkeypatch.setenv("WISP_GPU_HOURS_PER_DAY", "12.5")
    monkeypatch.setenv("WISP_RUNNER_CLUSTER", "wisp-prod")
    monkeypatch.setenv("WISP_RUNNER_SERVICE", "wisp-prod-runner")
    assert ScalingConfig.from_env() == ScalingConfig(
        stage="prod", max_runners=4, jobs_per_runner=2, idle_minutes=10, gpu_hours_per_day=12.5,
        cluster="wisp-prod", service="wisp-prod-runner")


def test_scaling_config_defaults_make_no_ecs_calls(monkeypatch):
    for name in ("WISP_RUNNER_CLUSTER", "WISP_RUNNER_SERVICE", "WISP_GPU_HOURS_PER_DAY", "WISP_IDLE_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    config = ScalingConfig.from_env()
    assert not config.has_service and config.gpu_budget_seconds is None
    assert config.idle_minutes == scaling.DEFAULT_IDLE_MINUTES
