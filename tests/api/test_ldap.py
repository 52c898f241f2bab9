"""/api/ldap/login/{idp_name} against a real OpenLDAP server (spec §3.4, §12.8; tests/slapd.py).

The directory: alice (user), bob (admin: member of wisp-admins, found by the admin query), carol
(no mail), two entries "twin", "st*r" and "stXr", jürgen (non-ASCII uid), mallory (bad mail).
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from chalicelib.settings import LdapProviderSettings
from chalicelib.store.users import Login, User, ldap_login_key
from tests.slapd import (
    ADMINS_GROUP, JUERGEN, PASSWORD, PEOPLE, READER_DN, READER_PASSWORD, SUFFIX, Slapd, _write_certificates,
)
from tests.support import body, settings_with

NAME = "Wisp LDAP"
WRONG = "Incorrect user name or password"


@pytest.fixture(scope="module")
def slapd():
    server = Slapd.start()
    yield server
    server.stop()


def provider(server_address: str, **changes: Any) -> LdapProviderSettings:
    data: dict[str, Any] = {
        "server_address": server_address,
        "service_account_auth": {"user": READER_DN, "password": READER_PASSWORD},
        "username_attributes": ["uid", "mail"],
        "uid_attribute": "uid",
        "mail_attribute": "mail",
        "user_query": {"base_dn": SUFFIX, "filter": "(objectClass=inetOrgPerson)"},
        "admin_query": {"base_dn": PEOPLE, "filter": f"memberOf={ADMINS_GROUP}"},
    }
    data.update(changes)
    return LdapProviderSettings.model_validate(data)


@pytest.fixture
def providers(slapd, use_settings):
    """Configure LDAP providers (name → settings); the default is one plain-LDAP provider."""

    def apply(configured: dict[str, LdapProviderSettings] | None = None) -> dict[str, LdapProviderSettings]:
        configured = {NAME: provider(slapd.ldap_url)} if configured is None else configured
        use_settings(settings_with("security", ldap_providers=configured))
        return configured

    apply()
    return apply


def login(api, username: str, password: str = PASSWORD, *, idp: str = NAME, scope: str | None = None,
          agent: str | None = None):
    form = {"username": username, "password": password}
    if scope is not None:
        form["scope"] = scope
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if agent:
        headers["User-Agent"] = agent
    return api.post(f"/api/ldap/login/{quote(idp, safe='')}", body=urlencode(form), headers=headers)


def cookie_of(response) -> str:
    assert response.status_code == 200, response.body
    cookie = response.headers["Set-Cookie"]
    assert cookie.endswith("; Path=/; SameSite=lax") and "Max-Age=3600" in cookie
    return cookie.split(";")[0].split("=", 1)[1]


def refused(response, status: int = 401) -> None:
    assert response.status_code == status, response.body
    assert "Set-Cookie" not in response.headers
    if status == 401:
        assert body(response) == {"detail": WRONG}
        assert response.headers["WWW-Authenticate"] == "Bearer"


# ------------------------------------------------------------------------------------------ bind


def test_good_bind_opens_a_session_of_an_ldap_account(api, providers):
    r = login(api, "alice", agent="Firefox on Linux")
    assert body(r) == "You are logged in; your session token was set as the cookie 'token'"
    token = cookie_of(r)
    info = body(api.get("/api/users/info", token=token))
    assert info == {"id": info["id"], "email": "alice@example.org", "accepted_tos": {}, "provider_name": NAME,
                    "user_type": "ldap", "is_verified": True}
    tokens = body(api.get("/api/users/get_all_token_info", token=token))
    assert [(t["name"], t["admin_privileges"], t["explicit"]) for t in tokens] == [("Firefox on Linux", False, False)]
    # keyed by (provider, uid): the mail attribute names the same account, and so does a second login
    again = body(api.get("/api/users/info", token=cookie_of(login(api, "alice@example.org"))))
    assert again["id"] == info["id"]
    user = User.get(info["id"])
    assert user.login_key == ldap_login_key(NAME, "alice") and user.password_hash is None
    assert Login.get(ldap_login_key(NAME, "alice")).user_id == info["id"]


def test_address_and_admin_flag_follow_the_directory(api, providers):
    uid = body(api.get("/api/users/info", token=cookie_of(login(api, "alice"))))["id"]
    User.get(uid).update(actions=[User.email.set("old@example.org"), User.is_admin.set(True)])
    cookie_of(login(api, "alice"))
    user = User.get(uid)
    assert (user.email, user.is_admin) == ("alice@example.org", False)


def test_wrong_password_no_entry_two_entries_and_no_mail_are_401(api, providers):
    refused(login(api, "alice", "not-her-password"))
    refused(login(api, "nobody"))
    refused(login(api, "twin"))  # two entries match: ambiguous
    refused(login(api, "carol"))  # no mail attribute
    refused(login(api, "alice", " "))
    assert User.scan().total_count == 0 or all(u.user_type != "ldap" for u in User.scan())


def test_blank_fields_are_422_like_local_login(api, providers):
    for form in ("username=alice&password=", "username=&password=x", "password=x"):
        r = api.post(f"/api/ldap/login/{quote(NAME)}", body=form,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 422, form


def test_invalid_mail_in_the_directory_is_500(api, providers):
    r = login(api, "mallory")
    assert r.status_code == 500
    assert "e-mail" in body(r)["detail"]


def test_admin_found_by_admin_query_gets_admin_only_with_the_scope(api, providers):
    plain = cookie_of(login(api, "bob"))
    assert body(api.get("/api/users/info", token=plain))["email"] == "Bob@example.org"  # domain normalised
    assert api.delete("/api/admins/invalidate_runner", query={"runner_id": 999}, token=plain).status_code == 403
    admin = cookie_of(login(api, "bob", scope="admin"))
    assert api.delete("/api/admins/invalidate_runner", query={"runner_id": 999}, token=admin).status_code != 403
    infos = body(api.get("/api/users/get_all_token_info", token=admin))
    assert sorted(t["admin_privileges"] for t in infos) == [False, True]


def test_scopes(api, providers):
    refused(login(api, "alice", scope="admin"), 400)
    refused(login(api, "bob", scope="admin write"), 400)
    refused(login(api, "alice", "wrong", scope="admin"), 401)  # the password is checked first
    cookie_of(login(api, "alice", scope=""))


def test_only_admins_when_there_is_no_user_query(api, providers, slapd):
    providers({NAME: provider(slapd.ldap_url, user_query=None)})
    refused(login(api, "alice"))
    cookie_of(login(api, "bob"))


def test_unknown_provider_is_400_and_no_provider_hides_the_route(api, providers, slapd):
    r = login(api, "alice", idp="wisp ldap")  # names are case-sensitive
    assert r.status_code == 400 and "wisp ldap" in body(r)["detail"]
    providers({})
    r = login(api, "alice")
    assert r.status_code == 404 and body(r) == {"detail": "Not Found"}


def test_provider_name_without_spaces_in_the_path(api, providers, slapd):
    providers({"campus": provider(slapd.ldap_url)})
    cookie_of(login(api, "alice", idp="campus"))


# ------------------------------------------------------------------------------------------ injection

INJECTIONS = ["*", "*)(uid=*", "alice)(|(uid=*", "ali*", "*)(objectClass=*", "\\", "alice\\", "al\x00ice",
              "alice\x00", ")(", "(uid=alice)", "a*e"]


@pytest.mark.parametrize("username", INJECTIONS)
def test_injection_inputs_get_the_answer_of_an_unknown_user(api, providers, username):
    # with alice's password: unescaped, "ali*", "a*e" and "*)(uid=*" would find her (or two people)
    refused(login(api, username, PASSWORD))


def test_the_server_receives_escaped_filters(api, providers, slapd):
    mark = slapd.log_mark()
    refused(login(api, "*)(uid=*"))
    refused(login(api, "al\\ice\x00"))
    refused(login(api, "j*rgen"))
    cookie_of(login(api, JUERGEN))  # non-ASCII: escaped byte by byte, and still found
    log = slapd.log_since(mark)
    filters = [line.split("filter=", 1)[1] for line in log.splitlines() if " SRCH " in line and "filter=" in line]
    assert filters, log
    text = "\n".join(filters)
    assert "(uid=\\2a\\29\\28uid=\\2a)" in text.lower()
    assert "(uid=al\\5cice\\00)" in text.lower()
    assert "(uid=j\\2argen)" in text.lower()
    assert "(uid=j\\c3\\bcrgen)" in text.lower()
    assert "(uid=*)" not in text and JUERGEN not in text


def test_a_literal_asterisk_matches_only_itself(api, providers):
    # "st*r" unescaped is a substring filter that would also match "stXr" (two entries: 401)
    info = body(api.get("/api/users/info", token=cookie_of(login(api, "st*r"))))
    assert info["email"] == "star@example.org"
    assert User.get(info["id"]).login_key == ldap_login_key(NAME, "st*r")


# ------------------------------------------------------------------------------------------ TLS


def test_ldaps_with_a_ca_file(api, providers, slapd):
    providers({NAME: provider(slapd.ldaps_url, ca_pem_file_path=str(slapd.ca_file))})
    cookie_of(login(api, "alice"))
    refused(login(api, "alice", "wrong"))


def test_starttls_with_a_ca_file(api, providers, slapd):
    providers({NAME: provider(slapd.ldap_url, start_tls=True, ca_pem_file_path=str(slapd.ca_file))})
    mark = slapd.log_mark()
    cookie_of(login(api, "alice"))
    assert "EXT oid=1.3.6.1.4.1.1466.20037" in slapd.log_since(mark)  # StartTLS was asked for


def test_ldaps_with_another_ca_is_refused_with_503(api, providers, slapd, tmp_path):
    other_ca, _, _ = _write_certificates(tmp_path)
    providers({NAME: provider(slapd.ldaps_url, ca_pem_file_path=str(other_ca))})
    r = login(api, "alice")
    assert r.status_code == 503 and "Set-Cookie" not in r.headers


def test_unreachable_directory_is_503(api, providers, slapd):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    providers({NAME: provider(f"ldap://127.0.0.1:{port}")})
    r = login(api, "alice")
    assert r.status_code == 503


def test_refused_service_account_is_503(api, providers, slapd):
    providers({NAME: provider(slapd.ldap_url, service_account_auth={"user": READER_DN, "password": "nope"})})
    assert login(api, "alice").status_code == 503


# ------------------------------------------------------------------------------------------ secrets


@pytest.mark.parametrize("secret", [READER_PASSWORD, json.dumps({"password": READER_PASSWORD})])
def test_service_password_from_secrets_manager(api, providers, slapd, secret):
    import boto3

    from chalicelib import settings

    settings._plain_secret_from_secrets_manager.cache_clear()
    arn = boto3.client("secretsmanager", region_name="eu-central-1").create_secret(
        Name="wisp-test/ldap-reader", SecretString=secret)["ARN"]
    providers({NAME: provider(slapd.ldap_url, service_account_auth={"user": READER_DN, "password_secret_arn": arn})})
    try:
        cookie_of(login(api, "alice"))
    finally:
        settings._plain_secret_from_secrets_manager.cache_clear()


# ------------------------------------------------------------------------------------------ the account


def test_auth_settings_lists_the_providers(api, providers, slapd):
    providers({NAME: provider(slapd.ldap_url, icon_url="https://example.org/ldap.svg"),
               "Staff": provider(slapd.ldap_url, hidden=True, allow_creation_of_api_tokens=False)})
    assert body(api.get("/api/auth_settings"))["ldap_providers"] == {
        NAME: {"hidden": False, "icon_url": "https://example.org/ldap.svg", "allow_creation_of_api_tokens": True},
        "Staff": {"hidden": True, "icon_url": None, "allow_creation_of_api_tokens": False},
    }
    cookie_of(login(api, "alice", idp="Staff"))  # hidden, still usable


def test_api_tokens_follow_the_provider_setting(api, providers, slapd):
    providers({NAME: provider(slapd.ldap_url), "Staff": provider(slapd.ldap_url, allow_creation_of_api_tokens=False)})
    token = cookie_of(login(api, "alice"))
    api_token = body(api.post("/api/users/get_new_api_token", query={"name": "script"}, token=token))
    assert body(api.get("/api/users/info", token=api_token))["user_type"] == "ldap"
    staff = cookie_of(login(api, "alice", idp="Staff"))
    r = api.post("/api/users/get_new_api_token", query={"name": "script"}, token=staff)
    assert r.status_code == 400
    # one account per (provider, uid): the same person through two providers is two accounts
    assert body(api.get("/api/users/info", token=staff))["id"] != body(api.get("/api/users/info", token=token))["id"]


def test_local_account_routes_refuse_ldap_users(api, providers):
    token = cookie_of(login(api, "alice"))
    r = api.post("/api/local-account/change_user_password", token=token,
                 json={"password": PASSWORD, "new_password": "Another-Pass-123"})
    assert r.status_code == 403
    r = api.post("/api/local-account/change_user_email", token=token,
                 json={"password": PASSWORD, "new_email": "x@example.org"})
    assert r.status_code == 403
    assert api.get("/api/local-account/resend_activation_email", token=token).status_code == 403
    # the local login does not know LDAP people
    r = api.post("/api/local-account/login", body=urlencode({"username": "alice@example.org", "password": PASSWORD}),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 401


def test_delete_account_and_log_in_again(api, providers):
    token = cookie_of(login(api, "alice"))
    first = body(api.get("/api/users/info", token=token))["id"]
    assert body(api.delete("/api/users/delete", token=token)) == "Success"
    assert api.get("/api/users/info", token=token).status_code == 401
    with pytest.raises(Login.DoesNotExist):
        Login.get(ldap_login_key(NAME, "alice"))
    again = body(api.get("/api/users/info", token=cookie_of(login(api, "alice"))))["id"]
    assert again != first


def test_failed_logins_are_throttled_per_account(api, providers, monkeypatch):
    from chalicelib.services import throttles

    monkeypatch.setattr(throttles, "LOGIN_FAILURES_PER_ACCOUNT", throttles.Rule("login-account", 3, 900))
    for _ in range(3):
        refused(login(api, "alice", "wrong"))
    r = login(api, "alice")  # the right password, too late
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    cookie_of(login(api, "bob"))  # another account is not locked


def test_authorization_matrix_holds_for_ldap_users(api, providers):
    """The job routes and the admin routes treat LDAP sessions and API tokens as they treat local ones."""
    from tests.api.test_jobs_authorization import ADMIN_ROUTES, JOB_ROUTES, _call
    from tests.jobs_support import submit

    alice = cookie_of(login(api, "alice"))
    alice_api = body(api.post("/api/users/get_new_api_token", query={"name": "script"}, token=alice))
    job_id = body(submit(api, alice_api))
    assert body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=alice)) != []
    bob = cookie_of(login(api, "bob"))
    results = {route[1]: _call(api, route, job_id, bob) for route in JOB_ROUTES
               if route[0] != "POST" or route[1] == "/api/jobs/abort"}
    assert body(results["/api/jobs/count"]) == 0 and body(results["/api/jobs/info"]) == []
    assert results["/api/jobs/download_transcript"].status_code == 400
    [info] = body(api.get("/api/jobs/info", query={"job_ids": job_id}, token=alice))
    assert info["step"] != "aborted"
    bob_admin = cookie_of(login(api, "bob", scope="admin"))
    bob_api = body(api.post("/api/users/get_new_api_token", query={"name": "script"}, token=bob_admin))
    for route in ADMIN_ROUTES:
        assert _call(api, route, 0, alice).status_code == 403, route
        assert _call(api, route, 0, bob).status_code == 403, route  # admin only with the scope
        assert _call(api, route, 0, bob_api).status_code == 403, route  # API tokens never admin
        assert _call(api, route, 0, bob_admin).status_code == 200, route
