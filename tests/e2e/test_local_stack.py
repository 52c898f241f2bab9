"""The local stack as ``make run`` starts it, driven over real HTTP.

Each test starts ``python -m wisp_local`` in a subprocess with free ports and a fresh
state directory, reads mail back from moto's SES over HTTP, and stops the stack with SIGTERM as a
terminal or a service manager would. The runner is off except in the last test, which runs one job
through it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import requests

from .stack import (
    PASSWORD,
    ROOT,
    START_TIMEOUT,
    descendants,
    free_port,
    log_in,
    sign_up_and_activate,
)


def test_account_lifecycle_over_http_and_clean_stop(stacks):
    # GIVEN a freshly started local stack
    stack = stacks()
    email = "e2e-user@example.org"

    # WHEN a person signs up, follows the mailed activation link and logs in
    sign_up_and_activate(stack, email)
    cookie = log_in(stack, email)

    # THEN the session works, can mint an API token, and logging out revokes it
    info = requests.get(f"{stack.url}/api/users/info", cookies={"token": cookie})
    assert info.status_code == 200, info.text
    assert info.json()["email"] == email and info.json()["is_verified"] is True
    assert info.headers["Content-Type"] == "application/json"

    r = requests.post(f"{stack.url}/api/users/get_new_api_token", params={"name": "x"}, cookies={"token": cookie})
    assert r.status_code == 200, r.text
    api_token = r.json()
    assert isinstance(api_token, str) and len(api_token.partition(".")[2]) == 43

    r = requests.delete(f"{stack.url}/api/users/logout", cookies={"token": cookie})
    assert (r.status_code, r.json()) == (200, "Success"), r.text
    r = requests.get(f"{stack.url}/api/users/info", cookies={"token": cookie})
    assert r.status_code == 401, r.text
    r = requests.get(f"{stack.url}/api/users/info", headers={"Authorization": f"Bearer {api_token}"})
    assert r.status_code == 200, r.text

    # AND the activation mail was echoed on the console, its link leading to the web app at /
    # (tests/web/test_smoke.py opens it in a browser)
    assert f"{stack.url}/#/local/activate?token=" in stack.output()
    page = requests.get(f"{stack.url}/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<div id="app">' in page.text and 'type="module"' in page.text

    # WHEN the stack gets SIGTERM THEN it exits cleanly and leaves no process behind
    assert stack.stop() == 0
    assert "stopped." in stack.output()


def test_state_survives_a_restart(stacks):
    import boto3

    # GIVEN a stack with an account, an API token and an object in S3
    stack = stacks()
    email = "restart@example.org"
    sign_up_and_activate(stack, email)
    cookie = log_in(stack, email)
    r = requests.post(f"{stack.url}/api/users/get_new_api_token", params={"name": "kept"}, cookies={"token": cookie})
    api_token = r.json()
    s3 = boto3.client("s3", endpoint_url=stack.aws_url, region_name="eu-central-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
    s3.put_object(Bucket="wisp-local", Key="audio/e2e.bin", Body=b"\x00\xffbytes")
    admin_password = (stack.log.parent / "state" / "admin-password").read_text().strip()
    assert stack.stop() == 0

    # WHEN the stack starts again on other ports with the same state directory
    stack = stacks()

    # THEN the account, its API token, the S3 object and the provisioned admin are all there
    assert "local AWS state: restored" in stack.output()
    r = requests.get(f"{stack.url}/api/users/info", headers={"Authorization": f"Bearer {api_token}"})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == email
    log_in(stack, email)
    log_in(stack, "admin@wisp.example", admin_password, scope="admin")
    assert admin_password in stack.output()  # the banner shows the generated admin login
    s3 = boto3.client("s3", endpoint_url=stack.aws_url, region_name="eu-central-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
    assert s3.get_object(Bucket="wisp-local", Key="audio/e2e.bin")["Body"].read() == b"\x00\xffbytes"

    # AND new ids continue after the old ones (the id counter was restored too)
    other = "second@example.org"
    r = requests.post(f"{stack.url}/api/local-account/signup", json={"email": other, "password": PASSWORD})
    assert r.status_code == 200, r.text
    first_id = requests.get(f"{stack.url}/api/users/info",
                            headers={"Authorization": f"Bearer {api_token}"}).json()["id"]
    assert re.search(rf"\b{first_id + 1}\b", r.json()), r.json()
    assert stack.stop() == 0


def test_bad_configuration_stops_the_start_with_the_key_named(tmp_path):
    config = tmp_path / "bad.yml"
    config.write_text("client_url: http://127.0.0.1:8000/#\nsecurity:\n  tokens:\n"
                      "    session_expiration_time_minutes: 5\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WISP_", "AWS_", "MOTO_"))}
    env.update(WISP_CONFIG=str(config), WISP_STATE_DIR=str(tmp_path / "state"), PORT=str(free_port()),
               WISP_MOTO_PORT=str(free_port()))
    result = subprocess.run([sys.executable, "-m", "wisp_local"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    assert "security.tokens.session_expiration_time_minutes" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng to speak the test audio")
def test_the_local_runner_transcribes_a_job_and_stops_with_the_stack(stacks, tmp_path):
    # GIVEN the stack as `make run` starts it, runner included, and a spoken sentence
    stack = stacks(WISP_LOCAL_RUNNER="1")
    audio = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(audio), "Welcome to the local stack."], check=True)
    deadline = time.monotonic() + START_TIMEOUT
    while "registered as runner" not in stack.output():
        assert time.monotonic() < deadline, stack.output()[-4000:]
        assert stack.process.poll() is None, stack.output()[-4000:]
        time.sleep(0.3)
    admin_password = (stack.log.parent / "state" / "admin-password").read_text().strip()
    # the banner says which model serves jobs that keep the API's default (large)
    assert "model tiny.en (jobs asking for `large`, the API's default, get tiny.en)" in stack.output()
    session = requests.Session()
    session.cookies.set("token", log_in(stack, "admin@wisp.example", admin_password))

    # WHEN a job asks for the model the local runner has
    r = session.post(f"{stack.url}/api/jobs/submit_settings", json={"model": "tiny.en", "language": "en"})
    assert r.status_code == 200, r.text
    with audio.open("rb") as f:
        r = session.post(f"{stack.url}/api/jobs/submit_job", params={"job_settings_id": r.json()},
                         files={"audio_file": ("speech.wav", f, "audio/wav")})
    assert r.status_code == 200, r.text
    job_id = r.json()

    # THEN the runner transcribes it
    while True:
        (info,) = session.get(f"{stack.url}/api/jobs/info", params={"job_ids": job_id}).json()
        if info["step"] in ("success", "failed"):
            break
        assert time.monotonic() < deadline + 60, info
        time.sleep(0.5)
    assert info["step"] == "success" and info["runner_name"] == "local-cpu", info
    r = session.get(f"{stack.url}/api/jobs/download_transcript",
                    params={"job_id": job_id, "transcript_type": "as_txt"})
    assert r.status_code == 200 and "local stack" in r.json().lower(), r.text
    # the runner's routine calls (its long polls ended with the job, session token in the URL) stay
    # off the console
    assert "/api/wisp/runners/" not in stack.output() and "session_token=" not in stack.output()

    # AND SIGTERM stops the runner (it unregisters first) and leaves no process behind
    runner_pids = descendants(stack.process.pid)
    assert runner_pids, "the runner is not a child of the stack"
    assert stack.stop() == 0
    assert "unregistered" in stack.output()
