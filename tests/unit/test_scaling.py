"""The scaling decision on recorded fleet sequences, minute by minute (no AWS).

Each test feeds ``scaling.decide`` what the sweep saw in one minute after another: queued jobs,
busy and idle registered runners, the tasks the ECS service runs or starts. Unless a minute says
otherwise, the service's desired count is the target the previous minute set (ECS applied it).
"""
from __future__ import annotations

import dataclasses

import pytest

from chalicelib.services import scaling
from chalicelib.services.scaling import Decision, ScalingConfig, Snapshot
from chalicelib.store.fleet import FleetRecord

T0 = 1_800_000_000.0
CONFIG = ScalingConfig(stage="test", max_runners=4, jobs_per_runner=1, idle_minutes=15)


class Fleet:
    """Replays minutes through ``decide``, carrying the memory and the desired count along."""

    def __init__(self, config: ScalingConfig = CONFIG, *, desired: int = 0) -> None:
        self.config = config
        self.memory = FleetRecord()
        self.desired = desired
        self.minute = 0
        self.decisions: list[Decision] = []

    def run(self, *, queued: int = 0, busy: int = 0, idle: int = 0, tasks: int | None = None,
            desired: int | None = None, budget_exhausted: bool = False, minutes: int = 1,
            skip: int = 0) -> list[int]:
        """``minutes`` identical minutes (after ``skip`` minutes without a tick); their targets."""
        self.minute += skip
        if desired is not None:
            self.desired = desired  # changed outside the loop (a stack update, a person)
        targets = []
        for _ in range(minutes):
            snapshot = Snapshot(queued=queued, busy=busy, idle=idle,
                                tasks=busy + idle if tasks is None else tasks, desired=self.desired)
            decision = scaling.decide(snapshot, self.memory, self.config, now=T0 + 60 * self.minute,
                                      budget_exhausted=budget_exhausted)
            assert decision.target >= busy, "a busy runner must never be scaled away"
            self.decisions.append(decision)
            self.memory, self.desired = decision.memory, decision.target
            targets.append(decision.target)
            self.minute += 1
        return targets


@pytest.mark.parametrize(
    ("queued", "busy", "max_runners", "per_runner", "expected"),
    [
        (0, 0, 4, 1, 0),
        (1, 0, 4, 1, 1),
        (3, 1, 4, 1, 4),
        (9, 0, 4, 1, 4),  # capped
        (5, 0, 10, 2, 3),  # ceil(5 / 2)
        (4, 2, 10, 2, 4),
        (0, 3, 2, 1, 2),  # the need is capped; the busy ones stay anyway (see decide)
    ],
)
def test_runners_needed(queued, busy, max_runners, per_runner, expected):
    assert scaling.runners_needed(queued=queued, busy=busy, max_runners=max_runners,
                                  jobs_per_runner=per_runner) == expected


def test_runners_needed_rejects_zero_jobs_per_runner():
    with pytest.raises(ValueError):
        scaling.runners_needed(queued=1, busy=0, max_runners=1, jobs_per_runner=0)


def test_zero_to_n_and_back_to_zero():
    fleet = Fleet()
    # GIVEN an idle system, WHEN three jobs arrive: three runners at the first minute
    assert fleet.run(queued=3, tasks=0) == [3]
    assert fleet.decisions[-1].action == "out"
    # the tasks boot (running or pending, not registered): nothing more is started, nothing stops
    assert fleet.run(queued=3, tasks=3, minutes=4) == [3] * 4
    assert fleet.decisions[-1].starting == 3
    # THEN they register and work
    assert fleet.run(busy=3, minutes=10) == [3] * 10
    # the work is done: the runners stay for the grace window (15 minutes) ...
    assert fleet.run(idle=3, minutes=15) == [3] * 15
    # ... and then go, all at once
    assert fleet.run(idle=3) == [0]
    assert fleet.decisions[-1].action == "in"
    # stopping: the service no longer lists them, their leases run out
    assert fleet.run(idle=3, tasks=0) == [0]
    assert fleet.run(tasks=0, minutes=3) == [0, 0, 0]
    # nothing runs or waits: nothing is remembered (and nothing written)
    assert fleet.memory == FleetRecord()


def test_scale_out_counts_the_tasks_already_on_their_way():
    fleet = Fleet()
    assert fleet.run(queued=1, tasks=0) == [1]
    # a second job while the first runner boots: one more, not two
    assert fleet.run(queued=2, tasks=1) == [2]
    # the same queue a minute later: nothing more
    assert fleet.run(queued=2, tasks=2) == [2]


def test_an_idle_runner_takes_queued_work_before_a_new_one_starts():
    fleet = Fleet(desired=2)
    fleet.run(busy=1, idle=1, minutes=10)
    # a job arrives: the idle runner takes it (the snapshot is read after the sweep's assignment)
    assert fleet.run(queued=1, busy=1, idle=1) == [2]
    assert fleet.run(busy=2) == [2]


def test_jobs_per_runner_starts_fewer_runners():
    fleet = Fleet(dataclasses.replace(CONFIG, jobs_per_runner=3))
    assert fleet.run(queued=5, tasks=0) == [2]


def test_never_more_than_max_runners():
    fleet = Fleet()
    assert fleet.run(queued=40, tasks=0) == [4]
    assert fleet.run(queued=40, busy=4, minutes=3) == [4, 4, 4]


def test_busy_runners_are_never_scaled_away():
    fleet = Fleet(desired=4)
    # GIVEN two busy and two idle runners for a long time
    targets = fleet.run(busy=2, idle=2, minutes=30)
    # THEN only the idle capacity goes, after the grace window
    assert targets[:15] == [4] * 15 and targets[-1] == 2
    # WHEN a stack update resets the desired count to 0 (ECS cannot stop the protected busy tasks)
    assert fleet.run(busy=2, idle=0, tasks=2, desired=0) == [2]
    assert fleet.decisions[-1].action == "restore"
    # a lower max_runners never stops busy ones either
    fleet.config = dataclasses.replace(CONFIG, max_runners=1)
    assert fleet.run(busy=2, minutes=20) == [2] * 20


def test_starting_tasks_are_not_counted_as_idle():
    # GIVEN a short grace window and a GPU instance that boots for longer than that
    fleet = Fleet(dataclasses.replace(CONFIG, idle_minutes=5))
    fleet.run(busy=1, minutes=10)
    assert fleet.run(queued=1, busy=1, tasks=1) == [2]  # a second job: a second runner
    # WHEN the job is aborted while that runner boots, and the boot takes 8 minutes
    targets = fleet.run(busy=1, tasks=2, minutes=8)
    # THEN the starting task is kept although the demand has been low for longer than the window
    assert targets == [2] * 8
    assert fleet.decisions[-1].starting == 1
    # once registered it idles through the whole grace window before it goes (the busy one stays)
    targets = fleet.run(busy=1, idle=1, minutes=6)
    assert targets == [2] * 5 + [1]
    # a registered idle runner in the same place would have gone at once
    fleet = Fleet(dataclasses.replace(CONFIG, idle_minutes=5), desired=2)
    fleet.run(busy=1, minutes=10)
    targets = fleet.run(busy=1, idle=1, tasks=2)
    assert targets == [1]


def test_a_task_that_never_registers_is_stuck_not_starting():
    fleet = Fleet(desired=1)
    startup = int(scaling.STARTUP_MINUTES)
    assert fleet.run(tasks=1, minutes=startup) == [1] * startup
    assert fleet.decisions[-1].starting == 1
    # unregistered for STARTUP_MINUTES (a runner that cannot start): not starting any more, so it
    # goes after the grace window like idle capacity
    grace = int(CONFIG.idle_minutes)
    targets = fleet.run(tasks=1, minutes=grace + 1)
    assert fleet.decisions[-grace - 1].starting == 0
    assert targets == [1] * grace + [0]


def test_a_job_within_the_grace_window_keeps_the_runner():
    fleet = Fleet()
    fleet.run(queued=1, tasks=0)
    fleet.run(busy=1, minutes=5)
    fleet.run(idle=1, minutes=10)
    # a new job 10 minutes into the idle time: the idle runner takes it, nothing starts
    assert fleet.run(busy=1, minutes=3) == [1, 1, 1]
    # the grace window starts again when it is done
    targets = fleet.run(idle=1, minutes=16)
    assert targets[:15] == [1] * 15 and targets[-1] == 0


def test_nothing_is_scaled_in_before_a_whole_window_was_watched():
    # GIVEN runners the loop has never seen (first tick after a deploy, or after an outage)
    fleet = Fleet(desired=3)
    targets = fleet.run(idle=3, minutes=16)
    assert targets[:15] == [3] * 15 and targets[-1] == 0
    # a gap of more than GAP_SECONDS breaks the observation: the window starts again
    fleet = Fleet(desired=2)
    fleet.run(busy=1, idle=1, minutes=10)
    targets = fleet.run(busy=1, idle=1, skip=10, minutes=16)
    assert targets[:15] == [2] * 15 and targets[-1] == 1


def test_gpu_budget_stops_scale_out_only():
    fleet = Fleet(desired=2)
    fleet.run(busy=1, idle=1, minutes=20)
    # WHEN the budget is used up and jobs wait
    targets = fleet.run(queued=3, busy=2, budget_exhausted=True, minutes=3)
    # THEN nothing new starts, the busy runners stay
    assert targets == [2, 2, 2] and fleet.decisions[-1].action == "budget"
    # idle runners still go after the grace window, busy ones never
    targets = fleet.run(busy=1, idle=1, budget_exhausted=True, minutes=16)
    assert targets[-1] == 1
    # from zero: nothing starts at all
    fleet = Fleet()
    assert fleet.run(queued=2, tasks=0, budget_exhausted=True, minutes=3) == [0, 0, 0]
    # the next day (budget back): runners start at once
    assert fleet.run(queued=2, tasks=0) == [2]


def test_decision_memory_keeps_only_the_grace_window():
    fleet = Fleet()
    fleet.run(queued=1, tasks=0)
    fleet.run(busy=1, minutes=40)
    window = CONFIG.idle_minutes * 60
    demand = fleet.memory.demand
    assert len(demand) == 16  # this minute and the 15 before
    assert demand[-1][0] - demand[0][0] == window
