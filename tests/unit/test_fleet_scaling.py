"""The runner count on (moto's) ECS: the sweep schedule and the kick on submit call UpdateService.

The service has no real tasks in moto (it lists none), so the tasks that ECS would be starting show
up only through the desired count here; ``tests/unit/test_scaling.py`` covers starting tasks.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from chalicelib import aws, schedules
from chalicelib.services import scaling, sweeper
from chalicelib.services.scaling import ScalingConfig, ServiceView
from chalicelib.store import fleet as fleet_store
from tests.factories import LeaseClock
from tests.jobs_support import TRANSCRIPT, RunnerClient, make_runner, make_user, submit
from tests.support import body

CLUSTER, SERVICE = "wisp-test-runners", "wisp-test-runner"


@pytest.fixture
def ecs(monkeypatch):
    """A runner cluster and service at zero, and the environment that names them."""
    client = boto3.client("ecs", region_name="eu-central-1")
    client.create_cluster(clusterName=CLUSTER)
    client.register_task_definition(family="runner", containerDefinitions=[
        {"name": "runner", "image": "wisp-runner:latest", "memory": 512}])
    client.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition="runner", desiredCount=0)
    monkeypatch.setenv(scaling.ENV_CLUSTER, CLUSTER)
    monkeypatch.setenv(scaling.ENV_SERVICE, SERVICE)
    monkeypatch.setenv(scaling.ENV_MAX_RUNNERS, "3")
    monkeypatch.setenv(scaling.ENV_STAGE, "test")
    scaling.reset_kick_memo()
    yield client
    scaling.reset_kick_memo()


@pytest.fixture
def ecs_calls(ecs):
    """ECS operations the backend makes (recorded on the shared client of ``chalicelib.aws``)."""
    calls: list[str] = []

    def record(model, **_kw):
        calls.append(model.name)

    client = aws.client("ecs")
    client.meta.events.register("before-parameter-build.ecs.*", record)
    yield calls
    client.meta.events.unregister("before-parameter-build.ecs.*", record)


def desired(ecs) -> int:
    return ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["desiredCount"]


def set_desired(ecs, count: int) -> None:
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=count)


def metric(name: str) -> list[float]:
    cw = boto3.client("cloudwatch", region_name="eu-central-1")
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    points = cw.get_metric_statistics(
        Namespace="Wisp", MetricName=name, Dimensions=[{"Name": "Stage", "Value": "test"}],
        StartTime=end - timedelta(minutes=10), EndTime=end, Period=60, Statistics=["Maximum"],
    )["Datapoints"]
    return [p["Maximum"] for p in points]


def queue_job(api, monkeypatch) -> int:
    """A queued job, submitted while the kick is off (no service named), so only the sweep scales."""
    person = make_user()
    with monkeypatch.context() as m:
        m.delenv(scaling.ENV_SERVICE)
        return body(submit(api, person.token))


def test_sweep_scales_from_zero_to_the_queue_and_back_to_zero(api, ecs, ecs_calls, monkeypatch):
    clock = LeaseClock(monkeypatch)
    # GIVEN two queued jobs and no runner
    jobs = [queue_job(api, monkeypatch), queue_job(api, monkeypatch)]
    # WHEN the scheduled sweep runs
    assert schedules.sweep_runners() == {"released": 0, "assigned": 0}
    # THEN the service is asked for two runners at once
    assert desired(ecs) == 2
    assert ecs_calls.count("UpdateService") == 1
    # the same state a minute later: no second UpdateService
    clock.advance(60)
    schedules.sweep_runners()
    assert desired(ecs) == 2 and ecs_calls.count("UpdateService") == 1
    # one runner registers and works through both jobs
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    for job_id in jobs:
        assert body(runner.job_info())["id"] == job_id
        runner.audio()
        assert runner.result(transcript=TRANSCRIPT).status_code == 200
    # idle: it stays through the grace window (15 minutes), heartbeating, then both go
    counts = []
    for _minute in range(16):
        clock.advance(60)
        runner.heartbeat()
        schedules.sweep_runners()
        counts.append(desired(ecs))
    assert counts[:14] == [2] * 14 and counts[-1] == 0


def test_kick_on_submit_starts_a_runner_when_the_service_is_at_zero(api, ecs, ecs_calls):
    person = make_user()
    # WHEN a job is submitted with no runner online and the service at zero
    assert submit(api, person.token).status_code == 200
    # THEN a runner is asked for at once, not at the next sweep
    assert desired(ecs) == 1
    assert ecs_calls == ["DescribeServices", "UpdateService"]
    # more submits while it boots: no DescribeServices on each (this container saw it above zero)
    ecs_calls.clear()
    submit(api, person.token)
    assert ecs_calls == []


def test_kick_leaves_a_running_service_alone(api, ecs, ecs_calls):
    set_desired(ecs, 2)  # runners booting, none online yet
    person = make_user()
    submit(api, person.token)
    assert ecs_calls == ["DescribeServices"] and desired(ecs) == 2


def test_no_ecs_request_on_submit_while_runners_are_online(api, ecs, ecs_calls):
    _rid, token = make_runner()
    RunnerClient(api, token).register()
    person = make_user()
    submit(api, person.token)  # straight to the idle runner
    submit(api, person.token)  # queued behind it
    assert ecs_calls == []


def test_kick_never_fails_a_submit(api, ecs, monkeypatch):
    monkeypatch.setenv(scaling.ENV_SERVICE, "no-such-service")
    person = make_user()
    assert submit(api, person.token).status_code == 200


def test_a_failing_sweep_still_scales_and_never_scales_busy_runners_down(api, ecs, monkeypatch):
    # GIVEN a busy runner, and a stack update that just reset the desired count to 0
    person = make_user()
    body(submit(api, person.token))
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    runner.register()
    runner.audio()
    set_desired(ecs, 0)
    # WHEN the sweep itself fails
    monkeypatch.setattr(sweeper, "sweep", lambda **_kw: (_ for _ in ()).throw(RuntimeError("sweep broke")))
    with pytest.raises(RuntimeError, match="sweep broke"):
        schedules.sweep_runners()  # raised after scaling: the function's Errors metric shows it
    # THEN the runner count was still set, back up to the busy runner, and the metrics published
    assert desired(ecs) == 1
    assert metric("BusyRunners") == [1.0] and metric("DesiredRunners") == [1.0]


def test_a_failing_scaling_step_is_raised_after_the_sweep(api, ecs, monkeypatch):
    monkeypatch.setattr(scaling, "tick", lambda **_kw: (_ for _ in ()).throw(RuntimeError("ecs down")))
    with pytest.raises(RuntimeError, match="ecs down"):
        schedules.sweep_runners()


def test_gpu_budget_reached_stops_scale_out(api, ecs, monkeypatch, caplog):
    # GIVEN a budget of 2 GPU hours that today's runners have used up
    monkeypatch.setenv(scaling.ENV_GPU_HOURS_PER_DAY, "2")
    fleet_store.add_gpu_seconds(scaling.utc_day(scaling.leases.clock()), 2 * 3600)
    person = make_user()
    # WHEN jobs are submitted and the sweep runs
    submit(api, person.token)
    with caplog.at_level(logging.WARNING, logger="wisp.scaling"):
        schedules.sweep_runners()
    # THEN no runner starts, the metric says why, and the log says it clearly
    assert desired(ecs) == 0
    assert metric("GpuBudgetExhausted") == [1.0] and metric("QueuedJobs") == [1.0]
    assert any("GPU budget" in r.getMessage() and "used up" in r.getMessage() for r in caplog.records)


def test_gpu_time_is_counted_once_per_minute_of_running_tasks(monkeypatch):
    config = ScalingConfig(stage="test", max_runners=3, gpu_hours_per_day=1, cluster=CLUSTER, service=SERVICE)
    monkeypatch.setattr(scaling, "read_service", lambda _config: ServiceView(desired=2, tasks=2))
    monkeypatch.setattr(scaling, "set_desired", lambda _config, _count: None)
    start = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc).timestamp()
    day = "2026-11-30"
    scaling.tick(config=config, now=start)  # first tick: one minute's worth
    scaling.tick(config=config, now=start + 60)
    scaling.tick(config=config, now=start + 60)  # a retried invocation of the same minute: nothing more
    scaling.tick(config=config, now=start + 150)
    assert fleet_store.gpu_seconds(day) == 2 * (60 + 60 + 90)
    # two ticks at once: only the one that saves the clock counts
    memory, _used = fleet_store.load(day)
    assert fleet_store.save(memory)
    assert not fleet_store.save(memory)  # the version moved on


def test_gpu_budget_is_reached_by_counted_time(monkeypatch):
    config = ScalingConfig(stage="test", max_runners=3, gpu_hours_per_day=0.05, cluster=CLUSTER, service=SERVICE)
    monkeypatch.setattr(scaling, "read_service", lambda _config: ServiceView(desired=3, tasks=3))
    monkeypatch.setattr(scaling, "set_desired", lambda _config, _count: None)
    start = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc).timestamp()
    # 3 tasks: 0.05 h = 180 s are used up in the first minute
    assert scaling.tick(config=config, now=start).action == "hold"
    assert metric("GpuBudgetExhausted") == [1.0]
