"""What a newcomer to ``make run`` does first (issue 9 §5), over real HTTP against one stack started
as ``make run`` starts it (runner included), with the clients people use: Swagger UI and the
web app in Debian's headless chromium (driven by playwright-core from ``tests/clients``), the
real ``curl`` binary, and the README's "Transcribe a file" commands run by bash exactly as written.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from .stack import PASSWORD, ROOT, Stack, readme_blocks, run_as_typed, sent_mail, stack_with_runner

CLIENTS = ROOT / "tests" / "clients"
ADMIN = "admin@wisp.example"
SPOKEN = "Hello from Wisp. This sentence was read by a computer."
HEARD = "this sentence was read by a computer"  # what tiny.en makes of SPOKEN, lower-cased
JOB_SECONDS = 120


def _need(*tools: str, browser: bool = False) -> None:
    """Fails (never skips) naming what is missing: `make test` installs all of it."""
    checks = [(tool, shutil.which(tool)) for tool in tools]
    if browser:
        checks += [
            ("node", shutil.which("node")),
            ("tests/clients/node_modules/playwright-core (npm ci in tests/clients; make test does it)",
             (CLIENTS / "node_modules" / "playwright-core").is_dir()),
            ("chromium (/usr/bin/chromium; make test installs it)", Path("/usr/bin/chromium").exists()),
        ]
    missing = [what for what, ok in checks if not ok]
    if missing:
        pytest.fail("these tests need: " + ", ".join(missing))


def _node(script: str, *args: str) -> dict:
    result = subprocess.run(["node", str(CLIENTS / script), *args], cwd=CLIENTS, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with stack_with_runner(tmp_path_factory.mktemp("newcomer")) as started:
        yield started


def _admin_password(stack: Stack) -> str:
    return (stack.log.parent / "state" / "admin-password").read_text().strip()


def _sign_up(stack: Stack, email: str) -> str:
    """A new account; returns the activation link of its mail."""
    r = requests.post(f"{stack.url}/api/local-account/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    match = re.search(r"(http\S+/#/local/activate\?token=\S+)", sent_mail(stack, email)[-1])
    assert match, sent_mail(stack, email)[-1]
    return match.group(1)


def _curl(*args: str, cwd: Path) -> tuple[int, str]:
    """Runs curl; returns the HTTP status and the body."""
    result = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def _wait_finished(session: requests.Session, stack: Stack, job_id: int) -> dict:
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        (info,) = session.get(f"{stack.url}/api/jobs/info", params={"job_ids": job_id}).json()
        if info["step"] in ("success", "failed"):
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------------


def test_log_in_from_the_docs_page_as_a_person_does(stack):
    _need(browser=True)
    # WHEN a person opens the login operation in Swagger UI, presses "Try it out", fills in only
    # username and password and presses "Execute", then tries GET /api/users/info the same way
    seen = _node("docs_login.mjs", stack.url, ADMIN, _admin_password(stack))
    # THEN the login succeeds with what the page pre-filled (grant_type=password, not "null")
    assert seen["login"]["status"] == 200, seen
    assert "grant_type=password&" in seen["login"]["sent"], seen
    # AND the session cookie it set is what the next call from the page is authenticated with
    assert seen["info"]["status"] == 200, seen
    assert json.loads(seen["info"]["body"])["email"] == ADMIN


def test_activation_link_says_what_to_do_next_and_lets_you_log_in(stack):
    _need(browser=True)
    # GIVEN a new account and the link of its activation mail
    email = "newcomer@example.org"
    link = _sign_up(stack, email)
    # WHEN the person opens the link in the web app, then signs in from the page it offers
    seen = _node("activation_page.mjs", link, email, PASSWORD)
    # THEN the page says the address is confirmed and that signing in comes next
    assert seen["activated"] == "Your e-mail address is confirmed.", seen
    assert seen["offered"] == "Continue to sign-in", seen
    # AND after signing in the app says who is signed in, and the browser holds a working session
    assert seen["loggedIn"] == f"Signed in as {email}", seen
    assert seen["landed"] in ("#/", ""), seen
    assert seen["info"]["status"] == 200 and seen["info"]["body"]["is_verified"] is True, seen


def test_curl_upload_without_settings_is_transcribed_by_the_local_model(stack, tmp_path):
    _need("curl", "espeak-ng")
    # GIVEN a new, activated account logged in with curl and a cookie jar, no settings of its own
    email = "curl-user@example.org"
    link = _sign_up(stack, email)
    r = requests.post(f"{stack.url}/api/local-account/activate", params={"token": link.rsplit("token=", 1)[1]})
    assert r.status_code == 200, r.text
    status, text = _curl("-c", "cookies.txt", "-d", f"username={email}", "--data-urlencode", f"password={PASSWORD}",
                         f"{stack.url}/api/local-account/login", cwd=tmp_path)
    assert status == 200, text
    subprocess.run(["espeak-ng", "-w", str(tmp_path / "talk.wav"), SPOKEN], check=True)

    # WHEN the model is named without its language, the API asks for it (as Project-W's does)
    status, text = _curl("-b", "cookies.txt", "-H", "Content-Type: application/json", "-d", '{"model": "tiny.en"}',
                         f"{stack.url}/api/jobs/submit_settings", cwd=tmp_path)
    assert status == 422 and "set language to 'en'" in json.loads(text)["detail"][0]["msg"], text

    # WHEN the file is uploaded as curl -F does it: a part labelled application/octet-stream
    status, text = _curl("--trace-ascii", "trace.txt", "-b", "cookies.txt", "-F", "audio_file=@talk.wav",
                         f"{stack.url}/api/jobs/submit_job", cwd=tmp_path)
    assert "Content-Type: application/octet-stream" in (tmp_path / "trace.txt").read_text()
    # THEN it is accepted: the file's content says it is audio
    assert status == 200, text
    job_id = int(text)

    # AND the job, without settings, asks for Project-W's default model and is transcribed by the
    # local runner's tiny.en, which the transcript's JSON says
    session = requests.Session()
    for line in (tmp_path / "cookies.txt").read_text().splitlines():
        if line.rstrip().split("\t")[-2:-1] == ["token"]:
            session.cookies.set("token", line.rstrip().split("\t")[-1])
    info = _wait_finished(session, stack, job_id)
    assert info["step"] == "success" and info["settings"]["model"] == "large", info
    as_json = session.get(f"{stack.url}/api/jobs/download_transcript",
                          params={"job_id": job_id, "transcript_type": "as_json"}).json()
    assert json.loads(as_json)["model"] == "tiny.en (serving 'large')"
    as_txt = session.get(f"{stack.url}/api/jobs/download_transcript",
                         params={"job_id": job_id, "transcript_type": "as_txt"}).json()
    assert HEARD in as_txt.lower(), as_txt


def test_curl_upload_of_what_is_not_audio_is_415(stack, tmp_path):
    _need("curl")
    status, text = _curl("-c", "cookies.txt", "-d", f"username={ADMIN}", "--data-urlencode",
                         f"password={_admin_password(stack)}", f"{stack.url}/api/local-account/login", cwd=tmp_path)
    assert status == 200, text
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "fake.wav").write_text("not audio either")
    # curl labels a .txt part text/plain: a declared type that is not audio/video
    status, text = _curl("-b", "cookies.txt", "-F", "audio_file=@notes.txt", f"{stack.url}/api/jobs/submit_job",
                         cwd=tmp_path)
    assert status == 415 and "text/plain" in json.loads(text)["detail"], text
    # a .wav part is labelled application/octet-stream, and its content decides
    status, text = _curl("-b", "cookies.txt", "-F", "audio_file=@fake.wav", f"{stack.url}/api/jobs/submit_job",
                         cwd=tmp_path)
    assert status == 415 and "no audio or video format" in json.loads(text)["detail"], text


def test_readme_transcribe_a_file_runs_as_written(stack, tmp_path):
    _need("curl", "espeak-ng", "python3")
    # GIVEN the README's commands: the transcription, then the API-token variant
    blocks = readme_blocks("Transcribe a file")
    assert len(blocks) == 2, blocks
    # WHEN bash runs them, as written, in the repository folder
    result = run_as_typed(stack, "\n".join(blocks), tmp_path, JOB_SECONDS + 60)
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    # THEN it logged in, the job succeeded, the transcript was printed as text
    assert "You are logged in" in output
    assert re.search(r"^job \d+: success", output, re.M), output
    assert HEARD in output.lower(), output
    # AND the API token it made works as a Bearer token
    assert json.loads(output.strip().splitlines()[-1])["email"] == ADMIN
    assert "Traceback" not in result.stderr, result.stderr
