"""What the local stack keeps across restarts, driven over real HTTP (``python -m wisp_local``).

Direct uploads (the ``/api/wisp/uploads`` extension: S3 multipart uploads through pre-signed URLs)
survive a killed stack, finished ones as queued jobs with their audio and unfinished ones
resumable under the same upload id. ``WISP_PERSIST=0`` starts empty without touching the saved
state, and a damaged state file stops the start with one line instead of a traceback, until the
user asks for recovery. The restart after concurrent load is in ``test_local_stack_load.py``.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import requests

from . import load
from .stack import ROOT, free_port, log_in, sign_up_and_activate

MIB = 1024 * 1024


def upload_parts(upload: dict, data: bytes, numbers: set[int] | None = None) -> dict[int, str]:
    """PUT the parts (all, or ``numbers``) to their pre-signed URLs; returns part number -> ETag."""
    size = upload["part_size"]
    etags = {}
    for part in upload["parts"]:
        n = part["part_number"]
        if numbers is None or n in numbers:
            r = requests.put(part["url"], data=data[(n - 1) * size:n * size], timeout=60)
            assert r.status_code == 200, r.text
            etags[n] = r.headers["ETag"]
    return etags


def complete(stack, session: requests.Session, upload_id: str, etags: dict[int, str]) -> int:
    r = session.post(f"{stack.url}/api/wisp/uploads/{upload_id}/complete",
                     json={"parts": [{"part_number": n, "etag": e} for n, e in sorted(etags.items())]}, timeout=60)
    assert r.status_code == 200, r.text
    return int(r.json())


def test_direct_uploads_survive_a_killed_stack(stacks):
    # GIVEN a person with one finished direct upload (a queued job) and one upload half done
    stack = stacks()
    email = "uploader@example.org"
    sign_up_and_activate(stack, email)
    session = requests.Session()
    session.cookies.set("token", log_in(stack, email))
    finished, unfinished = (load.wav(name) + os.urandom(16 * MIB) for name in ("finished", "unfinished"))
    started = []
    for name, data in (("finished.wav", finished), ("unfinished.wav", unfinished)):
        r = session.post(f"{stack.url}/api/wisp/uploads",
                         json={"file_name": name, "content_type": "audio/wav", "size": len(data)}, timeout=30)
        assert r.status_code == 200, r.text
        assert len(r.json()["parts"]) == 2
        started.append(r.json())
    queued_job = complete(stack, session, started[0]["upload_id"], upload_parts(started[0], finished))
    first_part = upload_parts(started[1], unfinished, {1})

    # WHEN the stack is killed (no chance to save anything more) and started again
    stack.process.kill()
    stack.process.wait()
    stack = stacks()

    # THEN the account is there (its session too), and the unfinished upload resumes under its id:
    # part 1 is there, part 2 gets a fresh URL
    log_in(stack, email)
    r = session.get(f"{stack.url}/api/wisp/uploads/{started[1]['upload_id']}/parts", timeout=30)
    assert r.status_code == 200, r.text
    resumed = r.json()
    assert [(p["part_number"], p["etag"]) for p in resumed["uploaded"]] == [(1, first_part[1])]
    assert [p["part_number"] for p in resumed["parts"]] == [2]
    second_part = upload_parts(resumed, unfinished, {2})
    later_job = complete(stack, session, started[1]["upload_id"], {**first_part, **second_part})
    # AND a runner gets both jobs with exactly the bytes that were uploaded
    tally = load.Tally()
    tally.submitted = {queued_job: load.digest(finished), later_job: load.digest(unfinished)}
    [token] = load.runner_tokens(stack, load.admin_session(stack, tally), 1)
    load.drain(stack, token, "after-kill", tally)
    assert tally.other_errors == [] and tally.server_errors == []
    assert tally.finished == {queued_job, later_job} and tally.wrong_audio == []
    assert stack.stop() == 0


def fingerprint(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def start_to_exit(state: Path, **extra_env: str) -> subprocess.CompletedProcess:
    """A start that is expected to stop by itself (as the stack harness starts it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WISP_", "AWS_", "MOTO_"))}
    env.update(PORT=str(free_port()), WISP_MOTO_PORT=str(free_port()), WISP_STATE_DIR=str(state),
               WISP_LOCAL_RUNNER="0", **extra_env)
    return subprocess.run([sys.executable, "-m", "wisp_local"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_saved_state_is_only_ever_changed_by_the_stack_that_loaded_it(stacks):
    # GIVEN saved state with an account, from a stack that was killed (so part of it is in the journal)
    stack = stacks()
    email = "kept@example.org"
    sign_up_and_activate(stack, email)
    stack.process.kill()
    stack.process.wait()
    state = stack.log.parent / "state"
    saved = fingerprint(state / "aws")

    # WHEN a stack runs with WISP_PERSIST=0 THEN it starts empty, and the saved state is untouched
    stack = stacks(WISP_PERSIST="0")
    assert "WISP_PERSIST=0" in stack.output()
    r = requests.post(f"{stack.url}/api/local-account/login", data={"username": email, "password": load.PASSWORD})
    assert r.status_code != 200
    assert stack.stop() == 0
    assert fingerprint(state / "aws") == saved

    # WHEN a journal entry in the middle is damaged THEN the start stops with one line naming the
    # file and the way out, no traceback, and nothing is changed
    [journal] = (state / "aws").glob("journal-*.jsonl")
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]) + b'{"headers": {"Host": "12\n' + lines[-1])
    damaged = fingerprint(state / "aws")
    refused = start_to_exit(state)
    assert refused.returncode == 1, refused
    assert "Traceback" not in refused.stdout + refused.stderr
    [message] = refused.stderr.strip().splitlines()
    assert str(journal) in message and "WISP_STATE_RECOVER=1" in message, message
    assert fingerprint(state / "aws") == damaged

    # WHEN the user asks for recovery THEN every intact entry is loaded (the account logs in), the
    # damaged file is kept aside, and the start says what was left out
    stack = stacks(WISP_STATE_RECOVER="1")
    log_in(stack, email)
    assert "left out: 1 unreadable entries" in stack.output()
    assert [p.name for p in (state / "aws").glob("damaged-*/*")] == [journal.name]
    assert stack.stop() == 0
