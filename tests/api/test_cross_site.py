"""Cross-site requests (issue 12 §1): a page on another site cannot drive Wisp with the user's cookie.

An HTML form can send ``text/plain``, ``application/x-www-form-urlencoded`` or multipart without a
CORS preflight, and SameSite=lax still lets a sibling subdomain's page add the ``token`` cookie.
"""
from __future__ import annotations

import json

import pytest

from chalicelib.services import tokens
from chalicelib.store.banners import all_banners
from chalicelib.store.users import User
from tests import factories
from tests.factories import PASSWORD, sent_mail
from tests.jobs_support import TRANSCRIPT, RunnerClient, make_runner, make_user, submit
from tests.support import body

EVIL = "https://evil.uni.example"
FORM_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]


@pytest.fixture
def admin_cookie() -> str:
    admin = factories.make_user(None, admin=True).user
    return tokens.issue_session(admin, name="t", admin=True).secret


def _as_form(api, path: str, payload: object, content_type: str, *, cookie: str | None = None, **kw: object):
    return api.post(path, body=json.dumps(payload), headers={"Content-Type": content_type}, cookie=cookie, **kw)


# ------------------------------------------------------------------------------------------
# JSON routes take JSON only
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", FORM_TYPES)
def test_a_forged_banner_is_422_and_nothing_is_stored(api, admin_cookie, content_type):
    r = _as_form(api, "/api/admins/add_site_banner", {"html": "<img src=x onerror=alert(1)>", "urgency": 1},
                 content_type, cookie=admin_cookie)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body"]
    assert all_banners() == []


@pytest.mark.parametrize("content_type", FORM_TYPES)
def test_a_forged_mail_to_all_users_is_422_and_sends_nothing(api, admin_cookie, content_type):
    before = len(sent_mail())
    r = _as_form(api, "/api/admins/send_email_to_all_users", {"subject": "Phish", "body": "click"}, content_type,
                 cookie=admin_cookie)
    assert r.status_code == 422 and len(sent_mail()) == before


def test_forged_abort_and_delete_are_422_and_change_nothing(api):
    person = make_user()
    job_id = body(submit(api, person.token))
    for path in ("/api/jobs/abort", "/api/jobs/delete"):
        r = api.request("POST" if path.endswith("abort") else "DELETE", path, body=json.dumps([job_id]),
                        headers={"Content-Type": "text/plain"}, cookie=person.token)
        assert r.status_code == 422, path
    info = body(api.get("/api/jobs/info", query={"job_ids": [job_id]}, token=person.token))
    assert info[0]["step"] == "pending_runner" and info[0]["abort"] is False


def test_a_forged_signup_is_422_and_creates_no_account(api):
    r = _as_form(api, "/api/local-account/signup", {"email": "victim@example.org", "password": PASSWORD},
                 "text/plain")
    assert r.status_code == 422
    assert [u for u in User.scan() if u.email == "victim@example.org"] == []


def test_json_with_a_charset_or_a_json_subtype_or_no_type_still_works(api, admin_cookie):
    for content_type in ("application/json; charset=utf-8", "application/problem+json", None):
        headers = {"Content-Type": content_type} if content_type else {}
        r = api.post("/api/admins/add_site_banner", body=json.dumps({"html": "ok", "urgency": 1}),
                     headers=headers, token=admin_cookie)
        assert r.status_code == 200, (content_type, r.body)


# ------------------------------------------------------------------------------------------
# Browsers' Origin: other sites are refused on every state change, including login
# ------------------------------------------------------------------------------------------


def test_login_from_another_site_is_refused(api):
    person = factories.make_user("login-csrf@example.org")
    form = f"username={person.user.email}&password={PASSWORD}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    r = api.post("/api/local-account/login", body=form, headers={**headers, "Origin": EVIL})
    assert r.status_code == 403 and "Set-Cookie" not in r.headers
    r = api.post("/api/local-account/login", body=form, headers={**headers, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # the frontend's own origin (client_url), the API's own, and clients without a browser are fine
    for extra in ({"Origin": "http://wisp.test"}, {"Origin": "http://localhost", "Host": "localhost"},
                  {"Sec-Fetch-Site": "same-origin"}, {}):
        r = api.post("/api/local-account/login", body=form, headers={**headers, **extra})
        assert r.status_code == 200, extra


def test_a_sibling_subdomain_cannot_use_the_cookie(api):
    person = make_user()
    job_id = body(submit(api, person.token))
    r = api.post("/api/jobs/abort", json=[job_id], cookie=person.token, headers={"Origin": "https://blog.wisp.test"})
    assert r.status_code == 403 and body(r) == {"detail": "Cross-site requests are not accepted"}
    assert body(api.get("/api/jobs/info", query={"job_ids": [job_id]}, token=person.token))[0]["abort"] is False


def test_reads_from_another_site_are_not_refused(api):
    # GET changes nothing; CORS (which Wisp does not grant) keeps its answers from the other site
    assert api.get("/api/about", headers={"Origin": EVIL}).status_code == 200


def test_the_stock_runner_protocol_is_unaffected(api):
    # the stock runner sends JSON with application/json and no Origin (httpx/aiohttp)
    person = make_user()
    _rid, token = make_runner()
    runner = RunnerClient(api, token)
    assert runner.register().status_code == 200
    job_id = body(submit(api, person.token))
    assert body(runner.job_info())["id"] == job_id
    assert runner.audio().status_code == 200
    assert body(runner.result(transcript=TRANSCRIPT)) == "Success"


# ------------------------------------------------------------------------------------------
# Banner HTML cannot carry script
# ------------------------------------------------------------------------------------------


def test_banner_html_is_sanitized(api, admin_cookie):
    html = ('<b>Maintenance</b> <img src="x" onerror="alert(1)"><script>steal()</script>'
            '<a href="javascript:alert(1)">x</a> <a href="https://status.uni.example">status</a>')
    assert api.post("/api/admins/add_site_banner", json={"html": html, "urgency": 1},
                    token=admin_cookie).status_code == 200
    shown = body(api.get("/api/about"))["site_banners"][0]["html"]
    assert "<b>Maintenance</b>" in shown and 'href="https://status.uni.example"' in shown
    for bad in ("onerror", "<script", "javascript:", "steal()"):
        assert bad not in shown, bad
