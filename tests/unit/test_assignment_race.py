"""20 runner threads, 200 jobs submitted concurrently: every job is assigned and finished exactly once.

The threads call the service layer (the same functions the routes call); moto is made to serve one
DynamoDB request at a time, which is the atomicity DynamoDB guarantees per request."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from chalicelib.schemas.runners import RunnerRegisterRequest
from chalicelib.services import admin, jobs, leases, protocol, tokens
from chalicelib.store import runners as runner_store
from chalicelib.store.jobs import Job
from tests.jobs_support import RUNNER_INFO, TRANSCRIPT, WAV, make_user, serialise_moto_dynamodb  # noqa: F401

RUNNERS = 20
JOBS = 200
SUBMITTERS = 4


@pytest.fixture
def atomic_moto():
    undo = serialise_moto_dynamodb()
    yield
    undo()


def test_concurrent_submits_and_runners_assign_each_job_exactly_once(atomic_moto):
    # No sweeper runs: a job left in the queue while a runner idles (a missed assignment trigger)
    # fails the test after the deadline.
    people = [make_user() for _ in range(SUBMITTERS)]
    taken: list[tuple[int, int]] = []  # (runner id, job id) as runners saw them
    lock = threading.Lock()
    done = threading.Event()
    failures: list[BaseException] = []

    def runner_loop(priority: int) -> None:
        try:
            _rid, secret = admin.create_runner()
            token_hash = tokens.hash_secret(secret)
            row = runner_store.get(token_hash)
            session = protocol.register(leases.RunnerPrincipal(row),
                                       RunnerRegisterRequest(**{**RUNNER_INFO, "priority": priority})).session_token
            while not done.is_set():
                principal = leases.renew(token_hash, tokens.hash_secret(session))
                assert principal is not None, "runner fell offline"
                current = principal.runner
                if not protocol.heartbeat(principal, 0.0).job_assigned:
                    time.sleep(0.25)
                    continue
                job_id = protocol.job_info(principal).id
                with lock:
                    taken.append((int(current.id), job_id))
                protocol.start_processing(principal)
                # as the submit_job_result route does: authenticated by reading the row together
                # with the queue generation, which decides whether the runner looks at the queue
                principal = leases.read(token_hash, tokens.hash_secret(session))
                assert principal is not None and principal.lease_deferred
                assert protocol.submit_result(principal, error_msg=None, transcript=TRANSCRIPT) == "Success"
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            done.set()

    submitted: list[int] = []

    def submit_loop(person) -> None:
        try:
            for _ in range(JOBS // SUBMITTERS):
                job_id = jobs.submit_job(user_id=person.user.id, file_name="a.wav", content_type="audio/wav",
                                         data=WAV, settings_id=None)
                with lock:
                    submitted.append(job_id)
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    workers = [threading.Thread(target=runner_loop, args=(1 + i % 3,), daemon=True) for i in range(RUNNERS)]
    for w in workers:
        w.start()
    submitters = [threading.Thread(target=submit_loop, args=(p,), daemon=True) for p in people]
    for s in submitters:
        s.start()
    for s in submitters:
        s.join(120)
    deadline = time.time() + 120
    while time.time() < deadline and not failures:
        with lock:
            if len(taken) >= JOBS:
                break
        time.sleep(0.1)
    time.sleep(0.3)  # let the last results land
    done.set()
    for w in workers:
        w.join(30)
    assert not failures, failures
    assert len(submitted) == JOBS and len(set(submitted)) == JOBS
    per_job = Counter(job_id for _rid, job_id in taken)
    assert set(per_job) == set(submitted), "a job was lost"
    assert max(per_job.values()) == 1, "a job went to two runners"
    finished = list(Job.batch_get(submitted))
    assert len(finished) == JOBS and all(j.downloaded is False and j.queue is None for j in finished)
    assert len({rid for rid, _ in taken}) > 1  # the work was spread over several runners
