"""The local stack under concurrent load over real HTTP, and what a restart keeps of it.

8 people submit jobs side by side while 4 runners speaking the stock runner protocol process them
(``tests/e2e/load.py``). Nothing may be lost, handed to two runners, or answered with a 5xx. Then
the stack restarts on the same state directory and must bring back every account, job,
transcript, and the audio of the jobs still waiting in the queue. The throughput is measured by
``bench/local_stack_load.py``; this test asserts no timings.
"""
from __future__ import annotations


from . import load
from .stack import log_in

SUBMITTERS, RUNNERS, JOBS_EACH = 8, 4, 5


def test_concurrent_submitters_and_runners_lose_nothing_and_a_restart_keeps_it_all(stacks):
    # GIVEN a stack, 8 people and 4 runner tokens
    stack = stacks()
    tally = load.Tally()
    admin = load.admin_session(stack, tally)
    people = load.people(stack, tally, SUBMITTERS)
    tokens = load.runner_tokens(stack, admin, RUNNERS)

    # WHEN they all submit jobs while the runners process them
    result = load.run_load(stack, [session for _, session in people], tokens, tally, jobs_per_submitter=JOBS_EACH)

    # THEN every job was handed to one runner, with its own audio, and finished; no answer was a 5xx
    assert len(tally.submitted) == SUBMITTERS * JOBS_EACH, tally.other_errors
    assert tally.server_errors == []
    assert tally.other_errors == []
    assert tally.unknown_after_submit == []
    assert tally.doubly_handed == {}
    assert tally.wrong_audio == []
    assert result.lost == []
    jobs_of = {i: sorted(j for j, owner in tally.owners.items() if owner == i) for i in range(SUBMITTERS)}
    for i, (_, session) in enumerate(people):
        assert set(load.job_steps(stack, session, jobs_of[i]).values()) == {"success"}

    # AND WHEN each person queues one more job while no runner is online, and the stack restarts
    queued: dict[int, tuple[int, bytes]] = {}
    for i, (_, session) in enumerate(people):
        audio = load.wav(f"queued-{i}")
        r = load.submit(stack, session, audio, f"queued-{i}.wav")
        assert r.status_code == 200, r.text
        queued[i] = (int(r.json()), audio)
    assert stack.stop() == 0
    stack = stacks()

    # THEN every account logs in, and every job and transcript is there
    for i, (email, session) in enumerate(people):
        log_in(stack, email)
        steps = load.job_steps(stack, session, jobs_of[i] + [queued[i][0]])
        assert steps == {**{j: "success" for j in jobs_of[i]}, queued[i][0]: "pending_runner"}
        for job in jobs_of[i]:
            assert load.transcript(stack, session, job).startswith(f"job {job} audio {tally.submitted[job]}")
    # AND a runner gets each queued job with the audio that was submitted
    after = load.Tally()
    after.submitted = {job: load.digest(audio) for job, audio in queued.values()}
    load.drain(stack, tokens[0], "after-restart", after)
    assert after.other_errors == [] and after.server_errors == []
    assert after.finished == set(after.submitted) and after.wrong_audio == []
    assert stack.stop() == 0
