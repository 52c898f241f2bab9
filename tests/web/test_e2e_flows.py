"""Wisp's web app end to end: headless chromium (playwright-core, tests/clients/web_flows.mjs) drives
the pages a person uses, over real HTTP against the local stack as ``make run`` starts it, with the
real CPU runner transcribing real speech. Every step is bounded in time and leaves a screenshot in
``$WISP_E2E_ARTIFACTS`` (else the test's tmp dir).

Flows (issue 14 §3) covered here: sign up, open the activation link from the stack's mailbox, sign
in, read a finished job's transcript (search, copy, play the recording in sync, click a word to
seek), download two formats, sign out; as an admin: see the runners, create one (token shown once),
invalidate it, post a banner, mail all users; then the user sees the banner.

Not covered yet (their pages do not exist yet): uploading through the upload page with progress,
interrupting and resuming it (the job is submitted from the page with the API's own calls instead),
the jobs list going live to success, API tokens on the account page.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import ROOT, START_TIMEOUT, Stack, descendants, start_stack

CLIENTS = ROOT / "tests" / "clients"
WEB = ROOT / "web"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@wisp.example", "Admin-Web-Flows-1!"
USER_EMAIL, USER_PASSWORD = "reader@example.org", "Reader-Web-Flows-1!"
SPEECH = ("Welcome to the history interview. Today we talk about the harbour of the old town. "
          "The fishermen came back every morning with their boats full of herring.")
BANNER_TEXT = "Maintenance tonight from nine"
FLOW_TIMEOUT_S = 420  # a whole flow; every step inside has its own, shorter bound


@pytest.fixture(autouse=True)
def aws_mock():
    """Overrides the autouse moto fixture of tests/support.py: the stack runs its own moto server."""
    yield


def _need_tools() -> None:
    missing = [what for what, ok in (
        ("node", shutil.which("node")),
        ("npm", shutil.which("npm")),
        ("tests/clients/node_modules (npm ci in tests/clients; make test does it)",
         (CLIENTS / "node_modules" / "playwright-core").is_dir()),
        ("web/node_modules (npm ci in web; make test does it)", (WEB / "node_modules").is_dir()),
        ("chromium (/usr/bin/chromium; make test installs it)", Path("/usr/bin/chromium").exists()),
        ("espeak-ng", shutil.which("espeak-ng")),
    ) if not ok]
    if missing:
        pytest.fail("the web end-to-end tests need: " + ", ".join(missing))


def _built_app() -> None:
    """web/dist as of the current sources (make test builds it; a run of this file alone may not have)."""
    index = WEB / "dist" / "index.html"
    sources = [p for p in (WEB / "src").rglob("*") if p.is_file()] + [WEB / "index.html"]
    if not index.exists() or max(p.stat().st_mtime for p in sources) > index.stat().st_mtime:
        subprocess.run(["npm", "run", "--silent", "build"], cwd=WEB, check=True, timeout=300)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    chosen = os.environ.get("WISP_E2E_ARTIFACTS")
    base = Path(chosen) / f"web-{datetime.now():%Y%m%d-%H%M%S}" if chosen else tmp_path_factory.mktemp("web-e2e")
    base.mkdir(parents=True, exist_ok=True)
    return base


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    _need_tools()
    _built_app()
    state = tmp_path_factory.mktemp("web-stack")
    started = start_stack(state / "state", state / "stack.log", WISP_LOCAL_RUNNER="1", WISP_ADMIN_EMAIL=ADMIN_EMAIL,
                          WISP_ADMIN_PASSWORD=ADMIN_PASSWORD)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "registered as runner" not in started.output():
            assert time.monotonic() < deadline and started.process.poll() is None, started.output()[-4000:]
            time.sleep(0.3)
        yield started
    finally:
        _stop(started)


def _stop(stack: Stack) -> None:
    if stack.process.poll() is not None:
        return
    below = descendants(stack.process.pid)
    stack.process.send_signal(signal.SIGTERM)
    try:
        stack.process.wait(30)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        stack.process.wait()
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_flow(stack: Stack, artifacts: Path, flow: str, **fields: object) -> dict[str, dict]:
    """Runs one flow of web_flows.mjs; returns its steps by name. Fails naming the failed step."""
    config = {"flow": flow, "base": stack.url, "out": str(artifacts),
              "mailbox": str(Path(stack.log).parent / "state" / "mailbox.txt"), **fields}
    try:
        done = subprocess.run(["node", str(CLIENTS / "web_flows.mjs"), json.dumps(config)], cwd=CLIENTS,
                              capture_output=True, text=True, timeout=FLOW_TIMEOUT_S)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as timeout:
        output, code = f"{timeout.stdout or ''}{timeout.stderr or ''}", -1
    steps: dict[str, dict] = {}
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "step" in entry:
            steps[entry["step"]] = entry
    failed = [s for s in steps.values() if not s["ok"]]
    assert code == 0 and not failed, (
        f"flow {flow} failed (exit {code}) at {failed[0]['step'] if failed else '?'}; screenshots in {artifacts}\n"
        + (failed[0]["error"] if failed else output[-4000:]) + "\n--- stack log ---\n" + stack.output()[-3000:])
    for entry in steps.values():
        assert Path(entry["screenshot"]).exists(), entry
    return steps


def test_a_person_signs_up_reads_a_transcript_in_sync_with_the_recording_and_signs_out(stack, artifacts, tmp_path):
    # GIVEN a recording of speech
    audio = tmp_path / "interview.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(audio), SPEECH], check=True, timeout=60)

    # WHEN a person walks through the app
    steps = run_flow(stack, artifacts, "user", email=USER_EMAIL, password=USER_PASSWORD, audio=str(audio),
                     search="herring")

    # THEN each step shows what it should
    assert "token=" in steps["activate"]["data"]["link"]
    transcript = steps["read-transcript"]["data"]
    assert transcript["segments"] >= 1 and transcript["words"] >= 10, transcript  # aligned: clickable words
    assert "harbour" in transcript["text"].lower() or "harbor" in transcript["text"].lower(), transcript["text"]
    assert steps["search"]["data"]["status"].startswith("1 of ") and steps["search"]["data"]["marked"] >= 1
    assert "fishermen" in steps["copy-text"]["data"]["clipboard"].lower()
    sync = steps["play-in-sync"]["data"]
    # the click seeked to the word, the highlight followed the playback, and it kept playing
    assert sync["first"]["time"] >= sync["clickedStart"] - 0.05, sync
    assert sync["later"]["time"] > sync["first"]["time"] + 0.5 and not sync["later"]["paused"], sync
    assert (int(sync["later"]["segment"]), int(sync["later"]["index"])) > (int(sync["first"]["segment"]),
                                                                          int(sync["first"]["index"])), sync
    assert sync["later"]["currentSegments"] == 1
    srt, vtt = steps["download-srt"]["data"], steps["download-vtt"]["data"]
    assert srt["name"] == "interview.srt" and srt["head"].startswith("1\n00:00:"), srt
    assert vtt["name"] == "interview.vtt" and vtt["head"].startswith("WEBVTT"), vtt
    assert steps["sign-out"]["data"]["info"] == 401


def test_an_admin_manages_runners_posts_a_banner_and_users_see_it(stack, artifacts):
    # GIVEN a user (signed up through the API: the browser sign-up is the other test's)
    r = requests.post(f"{stack.url}/api/local-account/signup", json={"email": "viewer@example.org",
                                                                     "password": USER_PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text

    # WHEN the admin works through the administration pages
    steps = run_flow(stack, artifacts, "admin", admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD,
                     banner_html=f"<strong>{BANNER_TEXT}</strong>", mail_subject="Wisp maintenance")

    # THEN the stack's runner is listed online with its version and heartbeat
    listed = steps["runners"]["data"]
    assert any(row["cells"][2] in ("idle", "job assigned", "processing") and row["cells"][4].endswith("ago")
               for row in listed), listed
    created = steps["create-runner"]["data"]
    assert created["tokenLength"] == 43 and created["state"] == "offline", created
    assert str(created["id"]) in steps["invalidate-runner"]["data"]["message"]
    mailbox = (Path(stack.log).parent / "state" / "mailbox.txt").read_text()
    header = mailbox.split("\nSubject: Wisp maintenance")[0].rsplit("----- mail to", 1)[-1]
    assert "bcc:" in header and "viewer@example.org" in header and ADMIN_EMAIL in header, header

    # AND a user sees the banner on every page, and on the about page
    steps = run_flow(stack, artifacts, "banner", email="viewer@example.org", password=USER_PASSWORD,
                     banner_text=BANNER_TEXT)
    assert BANNER_TEXT in steps["user-sees-banner"]["data"]["text"]
    assert "important" in steps["user-sees-banner"]["data"]["class"]
