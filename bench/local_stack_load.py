"""The local stack (`make run`) under concurrent load, and how long it takes to start again.

Starts `python -m wisp_local` in a subprocess (runner off, free ports, a fresh state
directory) and drives it over real HTTP with the driver of the end-to-end load test
(`tests/e2e/load.py`): people submitting small WAV files through `submit_job`, runners speaking the
stock runner protocol (heartbeat every `--interval` s instead of 10 s). Prints:

* jobs/s from the first submission to the last result: 1 submitter and 1 runner (the baseline,
  measured in the same run), then 8 submitters and 4 runners; with the errors counted (5xx,
  lost jobs, jobs handed to two runners), which must all be 0;
* the restart time after that load (SIGTERM, start again on the same state);
* the restart time after a day of an idle runner: 8,640 heartbeats (one every 10 s for 24 h, sent
  four at a time here), then SIGKILL, so the start has the most journal to replay; goal ≤ 10 s.

    .venv/bin/python bench/local_stack_load.py [--jobs 5] [--interval 0.1] [--heartbeats 8640]
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from wisp_local.emulated_aws import COMPACT_ENTRIES  # noqa: E402
from tests.e2e import load  # noqa: E402
from tests.e2e.stack import start_stack  # noqa: E402

GOAL_RESTART_S = 10.0


def timed_start(state: Path, log: Path) -> tuple[object, float, float]:
    """A started stack, seconds until its API answered, and the restore time it printed."""
    before = log.read_text() if log.exists() else ""
    started = time.monotonic()
    stack = start_stack(state, log)
    seconds = time.monotonic() - started
    printed = re.findall(r"local AWS state: restored .* in ([\d.]+) s", stack.output()[len(before):])
    return stack, seconds, float(printed[-1]) if printed else 0.0


def one_load(label: str, submitters: int, runners: int, jobs: int, interval: float, workdir: Path) -> tuple[object, Path]:
    state, log = workdir / label / "state", workdir / label / "stack.log"
    state.mkdir(parents=True)
    stack = start_stack(state, log)
    tally = load.Tally()
    admin = load.admin_session(stack, tally)
    people = load.people(stack, tally, submitters, prefix=label)
    tokens = load.runner_tokens(stack, admin, runners)
    result = load.run_load(stack, [s for _, s in people], tokens, tally, jobs_per_submitter=jobs, interval=interval)
    print(f"  {label:<22} {submitters:>2} submitters, {runners} runners: {len(tally.finished):>3} jobs in "
          f"{result.seconds:5.1f} s = {result.jobs_per_second:5.2f} jobs/s | 5xx {len(tally.server_errors)}, "
          f"lost {len(result.lost)}, handed twice {len(tally.doubly_handed)}, other errors {len(tally.other_errors)}")
    for line in (tally.server_errors + tally.other_errors)[:5]:
        print(f"      {line}")
    return stack, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5, help="jobs per submitter (default 5)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between a runner's heartbeats")
    parser.add_argument("--heartbeats", type=int, default=8640, help="heartbeats of the idle day (default 8640)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="wisp-bench-load-"))
    try:
        print("jobs/s over real HTTP (submit_job -> stock runner protocol -> result):")
        baseline, _ = one_load("baseline", 1, 1, args.jobs * 8, args.interval, workdir)
        baseline.stop()
        stack, log = one_load("concurrent", 8, 4, args.jobs, args.interval, workdir)
        state = log.parent / "state"
        stack.stop()
        stack, seconds, restore = timed_start(state, log)
        print(f"\nrestart after that load (SIGTERM, then start): API answering after {seconds:.1f} s "
              f"(state restored in {restore:.1f} s)")

        # a day of an idle runner: one heartbeat per 10 s is 8,640 writes of the runner's row
        tally = load.Tally()
        [token] = load.runner_tokens(stack, load.admin_session(stack, tally), 1)
        runner = requests.Session()
        runner.headers["Authorization"] = f"Bearer {token}"
        r = runner.post(f"{stack.url}/api/runners/register", json={"name": "idle", **load.RUNNER_INFO}, timeout=30)
        session = r.json()["session_token"]
        failed: list[str] = []

        def beat(count: int) -> None:
            for _ in range(count):
                r = runner.post(f"{stack.url}/api/runners/heartbeat", params={"session_token": session},
                                json={"progress": 0.0}, timeout=30)
                if r.status_code != 200:
                    failed.append(r.text)

        # four at a time, so the day takes minutes here; the number of writes is what counts
        began = time.monotonic()
        senders = [threading.Thread(target=beat, args=(args.heartbeats // 4 + (i < args.heartbeats % 4),))
                   for i in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        spent = time.monotonic() - began
        assert not failed, failed[:3]
        aws = state / "aws"
        journal = sum(len(p.read_bytes().splitlines()) for p in aws.glob("journal-*.jsonl"))
        print(f"\na day of an idle runner: {args.heartbeats} heartbeats in {spent:.0f} s; "
              f"{journal} requests in the journal at the end (at most {COMPACT_ENTRIES} at any time; moto's "
              f"recorder kept every one, and everything before)")
        stack.process.kill()  # no last snapshot: the start replays the journal
        stack.process.wait()
        stack, seconds, restore = timed_start(state, log)
        size = sum(p.stat().st_size for p in aws.rglob("*") if p.is_file())
        print(f"restart after it (SIGKILL, then start): API answering after {seconds:.1f} s "
              f"(state restored in {restore:.1f} s; {size / 1e6:.1f} MB on disk) | goal <= {GOAL_RESTART_S:.0f} s: "
              + ("met" if seconds <= GOAL_RESTART_S else "NOT met"))
        stack.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
