"""routes/admin_site.py: site banners and the broadcast mail (spec §3.7)."""
from __future__ import annotations

import pytest

from chalicelib.services import tokens
from chalicelib.store.users import User
from tests.factories import sent_mail
from tests import factories
from tests.support import body


def new_user(email: str | None = None, *, admin: bool = False, verified: bool = True) -> User:
    return factories.make_user(email, admin=admin, verified=verified).user


@pytest.fixture
def admin_token() -> str:
    return tokens.issue_session(new_user(admin=True), name="t", admin=True).secret


def about_banners(api) -> list[dict]:
    return body(api.get("/api/about"))["site_banners"]


# ------------------------------------------------------------------------------------------
# Banners
# ------------------------------------------------------------------------------------------


def test_banners_are_added_listed_by_urgency_and_deleted(api, admin_token):
    # GIVEN two banners added by an admin
    low = body(api.post("/api/admins/add_site_banner", json={"html": "<b>maintenance</b>", "urgency": 5},
                        token=admin_token))
    high = body(api.post("/api/admins/add_site_banner", json={"html": "outage", "urgency": 200},
                         token=admin_token))
    assert isinstance(low, int) and isinstance(high, int) and low != high
    # THEN /api/about lists them, most urgent first
    assert about_banners(api) == [{"id": high, "html": "outage", "urgency": 200},
                                  {"id": low, "html": "<b>maintenance</b>", "urgency": 5}]
    # WHEN one is deleted
    r = api.delete("/api/admins/delete_site_banner", query={"banner_id": high}, token=admin_token)
    assert r.status_code == 200 and body(r) is None
    assert [b["id"] for b in about_banners(api)] == [low]


def test_deleting_an_unknown_banner_is_not_an_error(api, admin_token):
    r = api.delete("/api/admins/delete_site_banner", query={"banner_id": 987654}, token=admin_token)
    assert r.status_code == 200 and body(r) is None


def test_banner_urgency_may_be_negative_and_extra_fields_are_ignored(api, admin_token):
    r = api.post("/api/admins/add_site_banner", json={"html": "x", "urgency": -3, "colour": "red"}, token=admin_token)
    assert r.status_code == 200
    assert about_banners(api) == [{"id": body(r), "html": "x", "urgency": -3}]


@pytest.mark.parametrize("payload, loc", [
    ({"urgency": 1}, ["body", "html"]),
    ({"html": "x"}, ["body", "urgency"]),
    ({"html": "x", "urgency": "very"}, ["body", "urgency"]),
    ([], ["body"]),
])
def test_bad_banner_body_is_422(api, admin_token, payload, loc):
    r = api.post("/api/admins/add_site_banner", json=payload, token=admin_token)
    assert r.status_code == 422
    assert loc in [e["loc"] for e in body(r)["detail"]]
    assert about_banners(api) == []


def test_missing_or_bad_banner_id_is_422(api, admin_token):
    r = api.delete("/api/admins/delete_site_banner", token=admin_token)
    assert r.status_code == 422
    assert body(r)["detail"][0]["loc"] == ["query", "banner_id"]
    r = api.delete("/api/admins/delete_site_banner", query={"banner_id": "one"}, token=admin_token)
    assert r.status_code == 422 and body(r)["detail"][0]["type"] == "int_parsing"


# ------------------------------------------------------------------------------------------
# Broadcast mail
# ------------------------------------------------------------------------------------------


def test_email_reaches_every_user_once_in_bcc(api, admin_token):
    # GIVEN users, two of them sharing an address (e.g. a local and an OIDC account)
    for email in ("a@example.org", "b@example.org", "shared@example.org", "shared@example.org"):
        new_user(email, verified=email != "b@example.org")
    # WHEN the admin broadcasts
    r = api.post("/api/admins/send_email_to_all_users", json={"subject": "Downtime", "body": "Sunday 10-12."},
                 token=admin_token)
    # THEN one message went out with every address once, all in Bcc
    assert r.status_code == 200 and body(r) is None
    [message] = sent_mail()
    assert message.to == [] and message.subject == "Downtime" and message.body == "Sunday 10-12."
    assert sorted(message.bcc) == sorted(set(message.bcc))
    assert set(message.bcc) >= {"a@example.org", "b@example.org", "shared@example.org"}


def test_email_to_many_users_goes_out_in_batches_of_50(api, admin_token):
    for n in range(120):
        new_user(f"person{n:03d}@example.org")
    r = api.post("/api/admins/send_email_to_all_users", json={"subject": "News", "body": "Hello"}, token=admin_token)
    assert r.status_code == 200
    messages = sent_mail()
    assert [len(m.bcc) for m in messages] == [50, 50, 21]  # 120 people + the admin
    everyone = [a for m in messages for a in m.bcc]
    assert len(everyone) == len(set(everyone)) == 121
    assert all(m.to == [] and m.subject == "News" for m in messages)


@pytest.mark.parametrize("payload", [{"subject": "s"}, {"body": "b"}, {"subject": 1, "body": "b"}])
def test_bad_email_body_is_422_and_sends_nothing(api, admin_token, payload):
    r = api.post("/api/admins/send_email_to_all_users", json=payload, token=admin_token)
    assert r.status_code == 422
    assert sent_mail() == []


# ------------------------------------------------------------------------------------------
# Gate: admin
# ------------------------------------------------------------------------------------------

ROUTES = [
    ("POST", "/api/admins/add_site_banner", {"json": {"html": "x", "urgency": 1}}),
    ("DELETE", "/api/admins/delete_site_banner", {"query": {"banner_id": 1}}),
    ("POST", "/api/admins/send_email_to_all_users", {"json": {"subject": "s", "body": "b"}}),
]


@pytest.mark.parametrize("method, path, kw", ROUTES)
def test_no_token_is_401(api, method, path, kw):
    r = api.request(method, path, **kw)
    assert r.status_code == 401
    assert isinstance(body(r)["detail"], str)
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method, path, kw", ROUTES)
def test_unknown_token_is_401_even_with_a_bad_body(api, method, path, kw):
    r = api.request(method, path, json={"nonsense": True}, token="not-a-token")
    assert r.status_code == 401


@pytest.mark.parametrize("method, path, kw", ROUTES)
def test_non_admin_session_is_403(api, method, path, kw):
    secret = tokens.issue_session(new_user(), name="t", admin=False).secret
    r = api.request(method, path, token=secret, **kw)
    assert r.status_code == 403 and isinstance(body(r)["detail"], str)


@pytest.mark.parametrize("method, path, kw", ROUTES)
def test_admin_user_without_admin_login_is_403(api, method, path, kw):
    secret = tokens.issue_session(new_user(admin=True), name="t", admin=False).secret
    assert api.request(method, path, token=secret, **kw).status_code == 403


@pytest.mark.parametrize("method, path, kw", ROUTES)
def test_api_token_of_an_admin_is_403(api, method, path, kw):
    secret = tokens.issue_api_token(new_user(admin=True), name="script").secret
    assert api.request(method, path, token=secret, **kw).status_code == 403


@pytest.mark.parametrize("method, path, kw", ROUTES)
def test_unverified_admin_is_403(api, method, path, kw):
    secret = tokens.issue_session(new_user(admin=True, verified=False), name="t", admin=True).secret
    r = api.request(method, path, token=secret, **kw)
    assert r.status_code == 403 and "verif" in body(r)["detail"]


def test_gate_comes_before_body_validation(api):
    secret = tokens.issue_session(new_user(), name="t", admin=False).secret
    r = api.post("/api/admins/add_site_banner", json={"html": 3}, token=secret)
    assert r.status_code == 403


def test_admin_cookie_session_works(api):
    secret = tokens.issue_session(new_user(admin=True), name="t", admin=True).secret
    r = api.post("/api/admins/add_site_banner", json={"html": "x", "urgency": 1}, cookie=secret)
    assert r.status_code == 200
    assert sent_mail() == []


@pytest.mark.parametrize("payload, loc", [
    ({"html": "x" * 65_537, "urgency": 1}, ["body", "html"]),
    ({"html": "x", "urgency": 10**40}, ["body", "urgency"]),
])
def test_banner_that_could_not_be_stored_is_422(api, admin_token, payload, loc):
    r = api.post("/api/admins/add_site_banner", json=payload, token=admin_token)
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == loc


def test_largest_banner_is_stored(api, admin_token):
    html = "ü" * 65_536
    r = api.post("/api/admins/add_site_banner", json={"html": html, "urgency": 2**63 - 1}, token=admin_token)
    assert r.status_code == 200
    assert about_banners(api)[0]["html"] == html
