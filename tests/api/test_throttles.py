"""Throttles on guessing and flooding (issue 12 §2): per account and per client address, counted in
DynamoDB with TTL, answered with 429 and ``Retry-After``."""
from __future__ import annotations

import dataclasses
import time

import pytest

from chalicelib import aws
from chalicelib.services import throttles
from chalicelib.store.throttles import Throttle
from tests import factories
from tests.factories import PASSWORD, sent_mail
from tests.support import body

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _login(api, email: str, password: str, address: str | None = None):
    return api.post("/api/local-account/login", body=f"username={email}&password={password}", headers=FORM)


def _limit(monkeypatch, name: str, limit: int) -> None:
    monkeypatch.setattr(throttles, name, dataclasses.replace(getattr(throttles, name), limit=limit))


def _assert_throttled(r) -> None:
    assert r.status_code == 429, (r.status_code, r.body)
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 3600 and "try again" in body(r)["detail"]


def test_failed_logins_lock_the_account_not_the_person_who_knows_the_password_elsewhere(api, monkeypatch):
    _limit(monkeypatch, "LOGIN_FAILURES_PER_ACCOUNT", 3)
    victim = factories.make_user("victim@example.org")
    other = factories.make_user("other@example.org")
    for _ in range(3):
        assert _login(api, victim.user.email, "wrong-guess-123").status_code == 401
    # THEN even the right password waits (no argon2 work is spent on a locked account) ...
    _assert_throttled(_login(api, victim.user.email, PASSWORD))
    # ... while another account logs in as usual
    assert _login(api, other.user.email, PASSWORD).status_code == 200


def test_successful_logins_do_not_count_against_the_account(api, monkeypatch):
    _limit(monkeypatch, "LOGIN_FAILURES_PER_ACCOUNT", 2)
    person = factories.make_user("often@example.org")
    for _ in range(5):
        assert _login(api, person.user.email, PASSWORD).status_code == 200


def test_one_address_cannot_try_many_accounts(api, monkeypatch):
    _limit(monkeypatch, "LOGIN_PER_ADDRESS", 4)
    for i in range(4):
        assert _login(api, f"guess{i}@example.org", "wrong-guess-123").status_code == 401
    _assert_throttled(_login(api, "guess9@example.org", "wrong-guess-123"))


def test_reset_mails_to_one_person_are_limited(api):
    person = factories.make_user("reset-me@example.org")
    before = len(sent_mail())
    for _ in range(throttles.RESET_PER_ACCOUNT.limit):
        r = api.get("/api/local-account/request_password_reset", query={"email": person.user.email})
        assert r.status_code == 200
    _assert_throttled(api.get("/api/local-account/request_password_reset", query={"email": person.user.email}))
    assert len(sent_mail()) - before == throttles.RESET_PER_ACCOUNT.limit


def test_reset_requests_from_one_address_are_limited(api, monkeypatch):
    _limit(monkeypatch, "RESET_PER_ADDRESS", 2)
    monkeypatch.setattr(throttles, "CONSTANT_ANSWER_S", 0.0)
    for i in range(2):
        assert api.get("/api/local-account/request_password_reset", query={"email": f"a{i}@example.org"}).status_code == 200
    _assert_throttled(api.get("/api/local-account/request_password_reset", query={"email": "a9@example.org"}))


def test_activation_mails_are_limited(api):
    person = factories.make_user("fresh@example.org", verified=False)
    token = person.session()
    for _ in range(throttles.ACTIVATION_PER_ACCOUNT.limit):
        assert api.get("/api/local-account/resend_activation_email", token=token).status_code == 200
    _assert_throttled(api.get("/api/local-account/resend_activation_email", token=token))


def test_signups_from_one_address_are_limited(api, monkeypatch):
    _limit(monkeypatch, "SIGNUP_PER_ADDRESS", 2)
    for i in range(2):
        r = api.post("/api/local-account/signup", json={"email": f"new{i}@example.org", "password": PASSWORD})
        assert r.status_code == 200, r.body
    _assert_throttled(api.post("/api/local-account/signup", json={"email": "new9@example.org", "password": PASSWORD}))


def test_counters_live_in_dynamodb_with_ttl_and_no_personal_data(api):
    _login(api, "someone@example.org", "wrong-guess-123")
    table = Throttle.Meta.table_name
    ttl = aws.client("dynamodb").describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at_epoch" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    items = list(Throttle.scan())
    assert items and all(int(i.expires_at_epoch) > time.time() for i in items)
    assert not any("someone" in i.key or "127.0.0.1" in i.key for i in items)


@pytest.mark.parametrize("email", ["exists@example.org", "nobody@example.org"])
def test_a_reset_request_takes_the_same_time_whether_or_not_the_account_exists(api, monkeypatch, email):
    factories.make_user("exists@example.org")
    waited: list[float] = []
    monkeypatch.setattr(throttles.time, "sleep", waited.append)
    started = time.monotonic()
    assert api.get("/api/local-account/request_password_reset", query={"email": email}).status_code == 200
    # the answer was held until the floor, on either path: its own work plus the wait is the floor
    assert len(waited) == 1 and 0 < waited[0] <= throttles.CONSTANT_ANSWER_S
    assert time.monotonic() - started + waited[0] >= throttles.CONSTANT_ANSWER_S
