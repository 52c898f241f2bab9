"""AWS requests per job lifecycle and per idle heartbeat, counted from botocore's ``before-call``
events on every client (boto3 clients of ``chalicelib.aws`` and PynamoDB's connections).

Lifecycle: submit (assigned at once to an idle runner) → first heartbeat → retrieve_job_info →
retrieve_job_audio → heartbeat with progress → submit_job_result → download_transcript.
Scenario B repeats it for a job that waits in the queue because the runner is busy.
Runs in-process against moto; the counts do not depend on the backend. Goals: ≤ 12 DynamoDB
requests per job, ≤ 2 per idle heartbeat, no Scan on any request path. The job count is reported
for Wisp's job path alone and in all, with user authentication and the SSE event log.

    .venv/bin/python bench/aws_requests.py
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import _env  # noqa: F401

GOAL_PER_JOB = 12
GOAL_PER_IDLE_HEARTBEAT = 2


class Recorder:
    """Counts requests by (service, operation, table) while ``phase`` is set.

    Hooks ``before-parameter-build`` (once per API call, like ``before-call``, but it sees the
    API parameters, so the table can be named)."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.calls: list[tuple[str, str, str, str]] = []
        self.hooked: set[int] = set()

    def hook(self, client: Any) -> None:
        if id(client) in self.hooked:
            return
        self.hooked.add(id(client))
        client.meta.events.register("before-parameter-build.*.*", self._before_call)

    def _before_call(self, model: Any, params: Any, **_kw: Any) -> None:
        if self.phase is None:
            return
        service = model.service_model.service_name
        table = ""
        if isinstance(params, dict):
            table = params.get("TableName", "")
            if not table and params.get("TransactItems"):
                table = "+".join(sorted({next(iter(i.values()))["TableName"] for i in params["TransactItems"]}))
            if not table and params.get("RequestItems"):
                table = "+".join(sorted(params["RequestItems"]))
        self.calls.append((self.phase, service, model.name, table.replace("wisp-test-", "")))


def category(table: str) -> str:
    """Which part of the design a request belongs to; transactions that carry job events along
    with a job change count as the job path (the events cost no request of their own)."""
    tables = set(table.split("+"))
    if tables == {"event-log"}:
        return "sse-events"
    if tables <= {"tokens", "users"}:
        return "user-auth"
    return "jobs"


def main() -> None:
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib import aws, bootstrap
    from chalicelib.settings import get_settings
    from chalicelib.store import ALL_MODELS
    from tests.jobs_support import TRANSCRIPT, RunnerClient, make_runner, make_user, submit
    from tests.support import Api

    recorder = Recorder()
    with mock_aws(), Client(app) as client:
        bootstrap.ensure_all(get_settings())
        api = Api(client)
        for service in ("s3", "ses", "dynamodb"):
            recorder.hook(aws.client(service))
        for model in ALL_MODELS:
            recorder.hook(model._get_connection().connection.client)
        person = make_user()
        _rid, token = make_runner()
        runner = RunnerClient(api, token)
        runner.register()

        def phase(name: str, action: Any) -> Any:
            recorder.phase = name
            try:
                return action()
            finally:
                recorder.phase = None

        def after_assignment(prefix: str, job_id: int) -> None:
            """The rest of a job's life once a runner holds it, as the stock runner and frontend go."""
            phase(f"{prefix}heartbeat: job assigned", runner.heartbeat)
            phase(f"{prefix}retrieve_job_info", runner.job_info)
            phase(f"{prefix}retrieve_job_audio", runner.audio)
            phase(f"{prefix}heartbeat: progress", lambda: runner.heartbeat(50))
            phase(f"{prefix}submit_job_result (+assignment)", lambda: runner.result(transcript=TRANSCRIPT))
            phase(f"{prefix}download_transcript", lambda: api.get(
                "/api/jobs/download_transcript", token=person.token,
                query={"job_id": job_id, "transcript_type": "as_txt"}))

        phase("idle heartbeat", runner.heartbeat)
        job_id = phase("submit_job (+assignment)", lambda: submit(api, person.token))
        after_assignment("", int(job_id.body))
        phase("idle heartbeat 2", runner.heartbeat)

        # Scenario B: the job arrives while the only runner is busy, waits in the queue and is
        # handed out when the runner finishes the job before it.
        submit(api, person.token)
        runner.audio()
        queued = phase("B submit_job (runner busy: queued)", lambda: submit(api, person.token))
        phase("B submit_job_result of the job before (+ hands out the queued one)",
              lambda: runner.result(transcript=TRANSCRIPT))
        after_assignment("B ", int(queued.body))

    by_phase: dict[str, Counter] = {}
    for ph, service, op, table in recorder.calls:
        by_phase.setdefault(ph, Counter())[(service, op, table)] += 1
    print("AWS requests per phase (service Operation [table]):")
    totals: Counter = Counter()
    scans = []
    for ph, counts in by_phase.items():
        dynamo = sum(n for (svc, _op, _t), n in counts.items() if svc == "dynamodb")
        print(f"\n{ph}: {sum(counts.values())} requests, {dynamo} DynamoDB")
        for (svc, op, table), n in sorted(counts.items()):
            print(f"  {n} × {svc} {op}" + (f" [{table}]" if table else ""))
            if op == "Scan":
                scans.append((ph, table))
            if ph.startswith(("idle", "B ")):
                continue
            totals[category(table) if svc == "dynamodb" else svc] += n
    idle = sum(n for (svc, _o, _t), n in by_phase["idle heartbeat"].items() if svc == "dynamodb")
    jobs_path = totals["jobs"]
    print("\nper job lifecycle (DynamoDB):")
    print(f"  Wisp job path (jobs, runners, settings, ids): {jobs_path} (goal ≤ {GOAL_PER_JOB}: "
          f"{'met' if jobs_path <= GOAL_PER_JOB else 'MISSED'})")
    print(f"  + user authentication (token and user in one BatchGetItem, 2 user calls): {totals['user-auth']}")
    print(f"  + SSE event log writes of their own (events ride in the job path's transactions; "
          f"progress is read from runner rows): {totals['sse-events']}")
    all_dynamo = jobs_path + totals['user-auth'] + totals['sse-events']
    print(f"  = {all_dynamo} DynamoDB requests in all (goal ≤ {GOAL_PER_JOB}: "
          f"{'met' if all_dynamo <= GOAL_PER_JOB else 'MISSED'}); "
          f"S3 {totals['s3']}, SES {totals['ses']}")
    print(f"per idle heartbeat: {idle} DynamoDB (goal ≤ {GOAL_PER_IDLE_HEARTBEAT}: "
          f"{'met' if idle <= GOAL_PER_IDLE_HEARTBEAT else 'MISSED'})")
    print(f"Scan on a request path: {'none' if not scans else scans}")

    def dynamo(ph: str) -> int:
        return sum(n for (svc, _o, _t), n in by_phase[ph].items() if svc == "dynamodb")

    # the previous job's result costs 2 on its own (as above); the rest of that call hands out ours
    handout = dynamo("B submit_job_result of the job before (+ hands out the queued one)") - dynamo(
        "submit_job_result (+assignment)")
    queued_total = sum(dynamo(ph) for ph in by_phase if ph.startswith("B ") and "job before" not in ph) + handout
    print(f"scenario B, a job queued while the runner is busy (its submit, its hand-out at the previous "
          f"result, the rest as above): {queued_total} DynamoDB requests "
          f"(goal ≤ {GOAL_PER_JOB}: {'met' if queued_total <= GOAL_PER_JOB else 'MISSED'})")


if __name__ == "__main__":
    main()
