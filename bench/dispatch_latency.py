"""Dispatch latency: from ``submit_job`` returning to an idle runner holding the job's audio.

Runs the real HTTP stack in this process (moto server + Chalice's local server). One runner waits
with Wisp's long-poll extension ``POST /api/wisp/runners/wait_for_job`` (the Lambda holds the
request up to ``timeout`` s and polls the runner's own row every 250 ms), then calls
``retrieve_job_info`` and ``retrieve_job_audio`` like the stock runner. Prints p50/p95 against
the goals, and what long-polling costs per idle runner-hour.

    .venv/bin/python bench/dispatch_latency.py [--jobs 60]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from pathlib import Path

import _env  # noqa: F401

import requests

from tests.jobs_support import TRANSCRIPT, HttpRunner, HttpStack, make_runner, make_user, multipart

GOAL_P50, GOAL_P95 = 1.0, 2.0
WAIT_TIMEOUT = 20.0
POLL_INTERVAL = 0.25
LAMBDA_MEMORY_GB = json.loads((Path(__file__).resolve().parent.parent / ".chalice" / "config.json")
                              .read_text())["lambda_memory_size"] / 1024  # the API function's memory
PRICE_GB_SECOND = 0.0000166667  # Lambda x86, USD
PRICE_LAMBDA_REQUEST = 0.20 / 1e6
PRICE_APIGW_REQUEST = 3.50 / 1e6  # REST API
PRICE_READ_UNIT = 0.25 / 1e6  # on-demand read request unit (a consistent read of ≤ 4 KB is 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def count_dynamodb_gets(seconds: float, runner: HttpRunner) -> int:
    """DynamoDB requests made while one idle runner long-polls for ``seconds``."""
    from chalicelib.store import ALL_MODELS

    counted = {"n": 0}

    def hook(**_kw: object) -> None:
        counted["n"] += 1

    clients = {id(m._get_connection().connection.client): m._get_connection().connection.client for m in ALL_MODELS}
    for client in clients.values():
        client.meta.events.register("before-call.dynamodb.*", hook)
    runner.wait_for_job(seconds)
    for client in clients.values():
        client.meta.events.unregister("before-call.dynamodb.*", hook)
    return counted["n"]


def _quiet() -> None:
    import logging

    from chalice import local

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("wisp").setLevel(logging.WARNING)
    local.ChaliceRequestHandler.log_message = lambda *a, **k: None  # type: ignore[method-assign]


def main() -> None:
    _quiet()
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=60)
    args = parser.parse_args()
    with HttpStack() as stack:
        person = make_user()
        _rid, token = make_runner()
        runner = HttpRunner(stack.url, token)
        runner.register()
        holding: dict[int, float] = {}
        arrived = threading.Condition()
        stop = threading.Event()

        def runner_loop() -> None:
            while not stop.is_set():
                if not runner.wait_for_job(2.0)["job_assigned"]:
                    continue
                job_id = runner.job_info()["id"]
                runner.audio()
                with arrived:
                    holding[job_id] = time.monotonic()
                    arrived.notify_all()
                runner.result(transcript=TRANSCRIPT)

        worker = threading.Thread(target=runner_loop, daemon=True)
        worker.start()
        latencies: list[float] = []
        raw, ctype = multipart(b"RIFF\x00\x7d\x00\x00WAVE" + b"\x00" * 31_988, filename="bench.wav", content_type="audio/wav")
        for _ in range(args.jobs):
            time.sleep(random.uniform(0.3, 0.8))  # the runner is back in its long-poll
            r = requests.post(f"{stack.url}/api/jobs/submit_job", data=raw, headers={"Content-Type": ctype},
                              cookies={"token": person.token}, timeout=60)
            returned = time.monotonic()
            job_id = int(r.json())
            with arrived:
                arrived.wait_for(lambda: job_id in holding, timeout=30)
            latencies.append(holding[job_id] - returned)
        stop.set()
        worker.join(10)

        idle_seconds = 5.0
        idle_requests = count_dynamodb_gets(idle_seconds, runner)
        runner.unregister()

    p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
    print(f"dispatch latency over {len(latencies)} jobs, one idle runner long-polling "
          f"(poll every {POLL_INTERVAL * 1000:.0f} ms):")
    print(f"  p50 {p50:.3f} s (goal ≤ {GOAL_P50} s: {'met' if p50 <= GOAL_P50 else 'MISSED'})")
    print(f"  p95 {p95:.3f} s (goal ≤ {GOAL_P95} s: {'met' if p95 <= GOAL_P95 else 'MISSED'})")
    print(f"  mean {statistics.mean(latencies):.3f} s, max {max(latencies):.3f} s")
    print("  stock runner (heartbeat every 10 s): ~5 s on average, up to 10 s")

    calls_per_hour = 3600 / WAIT_TIMEOUT
    gb_seconds = 3600 * LAMBDA_MEMORY_GB  # the function is busy the whole hour
    reads_per_hour = idle_requests / idle_seconds * 3600
    lambda_cost = gb_seconds * PRICE_GB_SECOND + calls_per_hour * PRICE_LAMBDA_REQUEST
    apigw_cost = calls_per_hour * PRICE_APIGW_REQUEST
    dynamo_cost = reads_per_hour * PRICE_READ_UNIT
    stock_gb_seconds = 360 * 0.05 * LAMBDA_MEMORY_GB  # 360 heartbeats of ~50 ms
    print(f"cost of long-polling per idle runner-hour ({LAMBDA_MEMORY_GB} GB function, "
          f"{WAIT_TIMEOUT:.0f} s per wait):")
    print(f"  Lambda: {gb_seconds:.0f} GB-s + {calls_per_hour:.0f} invocations = ${lambda_cost:.4f}")
    print(f"  API Gateway: {calls_per_hour:.0f} requests = ${apigw_cost:.5f}")
    print(f"  DynamoDB: {reads_per_hour:.0f} requests/h measured ({idle_requests} in {idle_seconds:.0f} s) "
          f"= ${dynamo_cost:.4f}")
    print(f"  total ≈ ${lambda_cost + apigw_cost + dynamo_cost:.4f} per idle runner-hour "
          f"(stock 10 s heartbeats: {stock_gb_seconds:.0f} GB-s ≈ ${stock_gb_seconds * PRICE_GB_SECOND + 360 * (PRICE_LAMBDA_REQUEST + PRICE_APIGW_REQUEST):.4f})")


if __name__ == "__main__":
    main()
