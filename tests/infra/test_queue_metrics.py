"""Queue metrics: the scaling arithmetic, and what the backend publishes to CloudWatch."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from chalicelib.services import queue_metrics as qm
from chalicelib.services.queue_metrics import QueueSnapshot, ScalingConfig


@pytest.mark.parametrize(
    ("queued", "busy", "max_runners", "per_runner", "expected"),
    [
        (0, 0, 4, 1, 0),
        (1, 0, 4, 1, 1),
        (3, 1, 4, 1, 4),
        (9, 0, 4, 1, 4),  # capped
        (5, 0, 10, 2, 3),  # ceil(5 / 2)
        (4, 2, 10, 2, 4),
        (0, 3, 2, 1, 2),  # never above the maximum, even when more are busy
    ],
)
def test_desired_runners(queued, busy, max_runners, per_runner, expected):
    assert qm.desired_runners(queued=queued, busy=busy, max_runners=max_runners, jobs_per_runner=per_runner) == expected


def test_desired_runners_rejects_zero_jobs_per_runner():
    with pytest.raises(ValueError):
        qm.desired_runners(queued=1, busy=0, max_runners=1, jobs_per_runner=0)


def test_scaling_target_keeps_online_runners_while_work_remains():
    # one busy, two idle, nothing queued: keep all three until the work is done
    assert qm.scaling_target(QueueSnapshot(queued=0, busy=1, idle=2), max_runners=4, jobs_per_runner=1) == 3
    # no work at all: 0, and the idle alarm decides when
    assert qm.scaling_target(QueueSnapshot(queued=0, busy=0, idle=2), max_runners=4, jobs_per_runner=1) == 0
    assert qm.scaling_target(QueueSnapshot(queued=5, busy=1, idle=0), max_runners=4, jobs_per_runner=1) == 4


def test_scale_to_zero_only_after_the_idle_time():
    assert not qm.should_scale_to_zero([0] * 14, idle_minutes=15)  # not idle long enough
    assert qm.should_scale_to_zero([2] + [0] * 15, idle_minutes=15)
    assert not qm.should_scale_to_zero([0] * 14 + [1], idle_minutes=15)
    assert qm.should_scale_to_zero([0, None] * 8, idle_minutes=15)  # missing data counts as idle
    with pytest.raises(ValueError):
        qm.should_scale_to_zero([], idle_minutes=0)


@pytest.fixture
def queue_tables():
    from chalicelib.store import jobs, runners

    for model in (jobs.Job, runners.Runner):
        model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
    return jobs, runners


def _job(jobs, job_id: int, *, queued: bool) -> None:
    jobs.Job(id=job_id, user_id=1, file_name=f"{job_id}.mp3", queue=jobs.QUEUED if queued else None,
             queue_pos=job_id if queued else None).save()


def _runner(runners, token: str, *, job_id: int | None, expires_at: float) -> None:
    runners.Runner(token_hash=token, id=len(token), online=runners.ONLINE, expires_at=int(expires_at), job_id=job_id).save()


def test_read_snapshot_counts_the_queue_and_online_runners(queue_tables):
    jobs, runners = queue_tables
    now = time.time()
    for job_id in (1, 2, 3):
        _job(jobs, job_id, queued=True)
    _job(jobs, 4, queued=False)  # assigned: no longer in the queue index
    _runner(runners, "busy", job_id=4, expires_at=now + 60)
    _runner(runners, "idle", job_id=None, expires_at=now + 60)
    _runner(runners, "gone", job_id=None, expires_at=now - 5)  # lease ran out: not online
    assert qm.read_snapshot(now=now) == QueueSnapshot(queued=3, busy=1, idle=1)


def test_read_snapshot_queries_instead_of_scanning(queue_tables, monkeypatch):
    jobs, runners = queue_tables
    monkeypatch.setattr(jobs.Job, "scan", lambda *a, **k: pytest.fail("Scan on jobs"))
    monkeypatch.setattr(runners.Runner, "scan", lambda *a, **k: pytest.fail("Scan on runners"))
    _job(jobs, 1, queued=True)
    assert qm.read_snapshot().queued == 1


def test_publish_puts_the_three_metrics_with_the_stage(queue_tables):
    jobs, runners = queue_tables
    now = time.time()
    for job_id in (1, 2, 3):
        _job(jobs, job_id, queued=True)
    _runner(runners, "busy", job_id=9, expires_at=now + 60)
    config = ScalingConfig(stage="prod", max_runners=3, jobs_per_runner=1)

    snapshot = qm.publish_queue_metrics(config=config)

    assert snapshot == QueueSnapshot(queued=3, busy=1, idle=0)
    cw = boto3.client("cloudwatch", region_name="eu-central-1")
    listed = cw.list_metrics(Namespace="Wisp")["Metrics"]
    assert {m["MetricName"] for m in listed} == {"QueuedJobs", "BusyRunners", "DesiredRunners"}
    assert all(m["Dimensions"] == [{"Name": "Stage", "Value": "prod"}] for m in listed)
    expected = {"QueuedJobs": 3.0, "BusyRunners": 1.0, "DesiredRunners": 3.0}  # min(3, 3 + 1)
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    for name, value in expected.items():
        stats = cw.get_metric_statistics(
            Namespace="Wisp", MetricName=name, Dimensions=[{"Name": "Stage", "Value": "prod"}],
            StartTime=end - timedelta(minutes=10), EndTime=end, Period=60, Statistics=["Maximum"],
        )["Datapoints"]
        assert [p["Maximum"] for p in stats] == [value], name


def test_scaling_config_from_env(monkeypatch):
    monkeypatch.setenv("WISP_STAGE", "prod")
    monkeypatch.setenv("WISP_MAX_RUNNERS", "4")
    monkeypatch.setenv("WISP_JOBS_PER_RUNNER", "2")
    assert ScalingConfig.from_env() == ScalingConfig(stage="prod", max_runners=4, jobs_per_runner=2)
