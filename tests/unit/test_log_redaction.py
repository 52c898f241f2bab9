"""No log line Wisp writes holds a whole secret: runner session tokens and mail-link tokens in
URLs, Bearer headers, token cookies (issue 12 §3). Each kind keeps its first four characters."""
from __future__ import annotations

import logging
import stat
import threading

import pytest
import requests

from chalicelib import logs
from chalicelib.logs import redact
from tests.factories import make_user, sent_mail
from tests.jobs_support import RUNNER_INFO, free_port, make_runner
from tests.support import settings_with

USER_TOKEN = "12." + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
RANDOM = "Zz9_Yy8-Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7M"  # 43 characters, as runner and session tokens
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJwdXJwb3NlIjoiYWN0aXZhdGlvbiJ9.c2lnbmF0dXJlLW9mLXRoZS1saW5r"


@pytest.mark.parametrize("line,kept", [
    (f'"POST /api/runners/heartbeat?session_token={RANDOM} HTTP/1.1" 200 -', "session_token=Zz9_…"),
    (f"http://wisp.test/#/local/activate?token={JWT}", "?token=eyJh…"),
    (f"GET /api/jobs/events?last_event_id=17&token={RANDOM}&x=1", "token=Zz9_…&x=1"),
    (f"Authorization: Bearer {USER_TOKEN}", "Bearer 12.A1b2…"),
    (f"Cookie: theme=dark; token={USER_TOKEN}", "token=12.A1b2…"),
    (f"HTTPConnectionPool(host='127.0.0.1', port=8000): Max retries exceeded with url: "
     f"/api/runners/retrieve_job_info?session_token={RANDOM} (Caused by ConnectTimeoutError())", "session_token=Zz9_… ("),
    (f"a link token on its own: {JWT}.", "own: eyJh…."),
    (f"a user token on its own: {USER_TOKEN}", "own: 12.A1b2…"),
    (f'{{"token": "{JWT}", "new_password": "Sup3r-Secret!"}}', '{"token": "eyJh…", "new_password": "…"}'),
])
def test_redact_keeps_four_characters_of_each_secret(line, kept):
    out = redact(line)
    assert kept in out, out
    for secret in (RANDOM, JWT, USER_TOKEN, "Sup3r-Secret!"):
        assert secret not in out
    assert redact(out) == out  # idempotent


def test_redact_leaves_ordinary_lines_alone():
    for line in ("GET /api/jobs/info?job_ids=3&job_ids=7 200", "job 17: finished (tiny, 3.2 s)",
                 "DELETE /api/users/invalidate_token?token_id=4", "last_event_id=1700000000123-5"):
        assert redact(line) == line


def test_wisp_log_lines_and_their_tracebacks_are_redacted(app, capsys):  # app: its import configures logging
    log = logging.getLogger("wisp.test")
    log.info("calling %s", f"/api/runners/heartbeat?session_token={RANDOM}")
    try:
        raise RuntimeError(f"backend said no to Bearer {USER_TOKEN}")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert "session_token=Zz9_…" in err and "Bearer 12.A1b2…" in err and "RuntimeError" in err
    assert RANDOM not in err and USER_TOKEN not in err


def test_the_dev_server_access_log_shortens_a_runners_session_token(app, capsys):
    # GIVEN Wisp behind Chalice's local dev server (as `make run` and the HTTP tests serve it)
    from chalice.config import Config
    from chalice.local import create_local_server

    from tests.jobs_support import _thread_local_current_request

    _thread_local_current_request(app)
    app_class = type(app)
    server = create_local_server(app, Config(), "127.0.0.1", free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server.server_address[1]}/api/runners"
    try:
        # WHEN a runner registers and sends a heartbeat with its session token in the query
        _runner_id, runner_token = make_runner()
        auth = {"Authorization": f"Bearer {runner_token}"}
        r = requests.post(f"{base}/register", json=RUNNER_INFO, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        session = r.json()["session_token"]
        r = requests.post(f"{base}/heartbeat", params={"session_token": session}, json={"progress": 0.0},
                          headers=auth, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        server.server.shutdown()
        server.server.server_close()
        app.__class__ = app_class
    # THEN the access log has the request, with the token shortened
    err = capsys.readouterr().err
    assert f"/api/runners/heartbeat?session_token={session[:4]}…" in err, err
    assert session not in err and runner_token not in err


def test_a_printed_mail_shows_link_tokens_shortened(api, use_settings, capsys):
    # GIVEN mails printed on the console (the local stack's mail.echo_to_console)
    use_settings(settings_with("mail", echo_to_console=True))
    make_user("nia@example.org")
    # WHEN a password reset link is mailed
    assert api.get("/api/local-account/request_password_reset", query={"email": "nia@example.org"}).status_code == 200
    token = sent_mail()[-1].link_token()
    # THEN the console shows the mail with its link, but not the token whole
    out = capsys.readouterr().out
    assert "----- mail to nia@example.org -----" in out and "Subject: Wisp: password reset request" in out
    assert f"/#/auth/local/reset-password?token={token[:4]}…" in out
    assert token not in out


def test_the_local_mailbox_keeps_whole_mails_privately(api, use_settings, capsys, tmp_path):
    from wisp_local import stack

    # GIVEN the local stack's mailbox next to the console
    use_settings(settings_with("mail", echo_to_console=True))
    mailbox = tmp_path / stack.MAILBOX
    console = logging.getLogger(logs.MAIL_CONSOLE)
    before = list(console.handlers)
    stack.keep_mail(mailbox)
    try:
        logs.configure()  # importing the app configures logging again: the mailbox stays first
        assert api.post("/api/local-account/signup", json={"email": "ola@example.org",
                                                           "password": "Very-Secret-Pass-1"}).status_code == 200
    finally:
        for handler in console.handlers:
            if handler not in before and not getattr(handler, "wisp", False):
                handler.close()
        console.handlers = before
    token = sent_mail()[-1].link_token()
    # THEN the file has the working link, readable by its owner only, and the console does not
    assert f"/#/local/activate?token={token}\n" in mailbox.read_text(encoding="utf-8")
    assert stat.S_IMODE(mailbox.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert f"token={token[:4]}…" in out and token not in out
