"""/api/local-account/*: success paths and every documented error (spec §3.2, §8)."""
from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from chalicelib.services import email_tokens
from chalicelib.settings import get_settings
from chalicelib.store.users import User
from tests.factories import PASSWORD, make_user, mail_to
from tests.support import body, settings_with

GOOD = "Very-Secret-Pass-1"


def login(api, email, password, scope=None, agent=None):
    form = f"username={email}&password={password}" + (f"&scope={scope}" if scope is not None else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if agent:
        headers["User-Agent"] = agent
    return api.post("/api/local-account/login", body=form, headers=headers)


def cookie_of(response) -> str:
    cookie = response.headers["Set-Cookie"]
    assert cookie.endswith("; Path=/; SameSite=lax") and "Max-Age=3600" in cookie
    return cookie.split(";")[0].split("=", 1)[1]


# ------------------------------------------------------------------------------------- signup


def test_signup_activate_login_flow(api):
    # GIVEN a new address WHEN signing up
    r = api.post("/api/local-account/signup", json={"email": "Alice@Example.ORG", "password": GOOD})
    assert r.status_code == 200, r.body
    assert isinstance(body(r), str) and "created" in body(r)
    # THEN an activation mail with a client_url link arrives (domain normalised, local part kept)
    mails = mail_to("Alice@example.org")
    assert len(mails) == 1 and "http://wisp.test/#/local/activate?token=" in mails[0].body
    # AND the account works unverified but cannot create API tokens yet
    token = cookie_of(login(api, "Alice@example.org", GOOD))
    info = body(api.get("/api/users/info", cookie=token))
    assert info["is_verified"] is False and info["email"] == "Alice@example.org"
    assert api.post("/api/users/get_new_api_token", query={"name": "x"}, cookie=token).status_code == 403
    # WHEN activating THEN verified
    r = api.post("/api/local-account/activate", query={"token": mails[0].link_token()})
    assert r.status_code == 200 and body(r) == "Success"
    assert body(api.get("/api/users/info", cookie=token))["is_verified"] is True
    # AND the same link again is a 400 (already verified)
    assert api.post("/api/local-account/activate", query={"token": mails[0].link_token()}).status_code == 400


def test_signup_validation_errors(api):
    r = api.post("/api/local-account/signup", json={"email": "not-an-address", "password": GOOD})
    assert r.status_code == 422
    assert body(r)["detail"][0]["loc"] == ["body", "email"]
    r = api.post("/api/local-account/signup", json={"email": "a@example.org", "password": "short"})
    err = body(r)["detail"][0]
    assert r.status_code == 422 and err["type"] == "value_error" and err["loc"] == ["body", "password"]
    assert err["msg"].startswith("Value error, ") and err["ctx"] == {"error": {}}
    for weak in ("alllowercase-1!", "ALLUPPERCASE-1!", "NoDigitsHere-!!", "NoSpecial12345a"):
        assert api.post("/api/local-account/signup", json={"email": "a@example.org", "password": weak}).status_code == 422
    r = api.post("/api/local-account/signup", body=b'{"email": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and body(r)["detail"][0]["type"] == "json_invalid"
    assert body(api.post("/api/local-account/signup"))["detail"][0]["type"] == "missing"


def test_signup_duplicate_is_400(api):
    make_user("taken@example.org")
    r = api.post("/api/local-account/signup", json={"email": "taken@EXAMPLE.org", "password": GOOD})
    assert r.status_code == 400 and isinstance(body(r)["detail"], str)


def test_signup_domain_not_allowed(api, use_settings):
    use_settings(settings_with("security.local_account", allowed_email_domains=["uni.example"]))
    assert api.post("/api/local-account/signup", json={"email": "a@other.example", "password": GOOD}).status_code == 400
    assert api.post("/api/local-account/signup", json={"email": "a@sub.uni.example", "password": GOOD}).status_code == 400
    assert api.post("/api/local-account/signup", json={"email": "a@uni.example", "password": GOOD}).status_code == 200


def test_signup_disabled_is_405_and_disabled_mode_hides_routes(api, use_settings):
    use_settings(settings_with("security.local_account", mode="no_signup"))
    r = api.post("/api/local-account/signup", json={"email": "a@example.org", "password": GOOD})
    assert r.status_code == 405 and isinstance(body(r)["detail"], str)
    use_settings(settings_with("security.local_account", mode="disabled"))
    r = api.post("/api/local-account/signup", json={"email": "a@example.org", "password": GOOD})
    assert r.status_code == 404 and body(r) == {"detail": "Not Found"}
    assert login(api, "a@example.org", GOOD).status_code == 404


# -------------------------------------------------------------------------------------- login


def test_login_sets_cookie_and_names_token_after_user_agent(api):
    person = make_user("bob@example.org")
    r = login(api, "bob@example.org", PASSWORD, agent="Firefox on Linux")
    assert r.status_code == 200 and isinstance(body(r), str)
    token = cookie_of(r)
    user_id, _, random_part = token.partition(".")
    assert user_id == str(person.user.id) and len(random_part) == 43 and token not in r.body.decode()
    infos = body(api.get("/api/users/get_all_token_info", token=token))
    assert [(i["name"], i["explicit"], i["admin_privileges"]) for i in infos] == [("Firefox on Linux", False, False)]
    assert person.user.id == body(api.get("/api/users/info", token=token))["id"]


def test_login_errors(api):
    make_user("carol@example.org")
    make_user("admin@example.org", admin=True)
    assert login(api, "carol@example.org", "wrong-password").status_code == 401
    assert login(api, "nobody@example.org", PASSWORD).status_code == 401
    assert login(api, "not an address", PASSWORD).status_code == 401
    assert login(api, "carol@example.org", PASSWORD, scope="admin").status_code == 400
    assert login(api, "admin@example.org", PASSWORD, scope="admin%20write").status_code == 400
    r = api.post("/api/local-account/login", body="username=carol@example.org",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body", "password"]
    r = api.post("/api/local-account/login", body=f"username=carol@example.org&password={PASSWORD}&grant_type=magic",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422


def _form_login(api, form: str):
    return api.post("/api/local-account/login", body=form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_login_with_the_form_swagger_ui_sends(api):
    # GIVEN an account and the form Swagger UI at /docs sends when a person fills in only the
    # e-mail address and the password (the other fields keep what the page pre-filled)
    make_user("dora@example.org")
    swagger_form = (f"grant_type=password&username=dora%40example.org&password={PASSWORD}&scope="
                    "&client_id=string&client_secret=********")
    # THEN it logs in, as do a grant type left blank ("Send empty value") and one left out
    assert _form_login(api, swagger_form).status_code == 200
    assert _form_login(api, f"grant_type=&username=dora@example.org&password={PASSWORD}").status_code == 200
    assert _form_login(api, f"username=dora@example.org&password={PASSWORD}").status_code == 200


def test_login_rejects_grant_types_other_than_password(api):
    make_user("dora@example.org")
    for grant_type in ("null", "magic", "client_credentials"):
        r = _form_login(api, f"grant_type={grant_type}&username=dora@example.org&password={PASSWORD}")
        assert r.status_code == 422, grant_type
        assert body(r)["detail"][0]["loc"] == ["body", "grant_type"]


def test_login_blank_username_or_password_is_missing(api):
    # upstream's forms treat a blank field as not sent, so these are 422, not 401
    for form, field in ((f"username=&password={PASSWORD}", "username"), ("username=dora@example.org&password=", "password")):
        r = _form_login(api, form)
        assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body", field], form


def test_login_form_documents_no_null_defaults(api):
    # Swagger UI pre-fills a form field with its documented default as text: a `null` default
    # became grant_type=null, a 422 (issue 9 §5)
    from chalicelib import openapi

    properties = openapi.document()["components"]["schemas"]["LoginForm"]["properties"]
    assert all(prop.get("default", "") is not None for prop in properties.values()), properties
    assert properties["grant_type"]["anyOf"][0]["pattern"] == "^password$"
    assert properties["password"]["format"] == "password"


def test_admin_login_gives_admin_token(api):
    make_user("root@example.org", admin=True)
    token = cookie_of(login(api, "root@example.org", PASSWORD, scope="admin"))
    infos = body(api.get("/api/users/get_all_token_info", token=token))
    assert infos[0]["admin_privileges"] is True and infos[0]["name"] == "Unknown device"


def test_login_rehashes_outdated_password_hash(api):
    from argon2 import PasswordHasher

    person = make_user("old@example.org")
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    person.user.update(actions=[User.password_hash.set(weak)])
    assert login(api, "old@example.org", PASSWORD).status_code == 200
    stored = User.get(person.user.id).password_hash
    assert stored != weak and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and len(stored) == 97


# --------------------------------------------------------------------------------- activation


def test_activate_errors(api):
    person = make_user("dave@example.org", verified=False)
    assert api.post("/api/local-account/activate", query={"token": "garbage"}).status_code == 401
    assert api.post("/api/local-account/activate").status_code == 422
    expired = _token_at(email_tokens.ACTIVATION, {"old_email": "dave@example.org", "new_email": None}, hours_ago=25)
    assert api.post("/api/local-account/activate", query={"token": expired}).status_code == 401
    other_key = jwt.encode({"old_email": "dave@example.org", "new_email": None, "purpose": "activation",
                            "iat": 1, "exp": 4102444800}, b"x" * 32, algorithm="HS256")
    assert api.post("/api/local-account/activate", query={"token": other_key}).status_code == 401
    reset = email_tokens.make(email_tokens.PASSWORD_RESET, {"email": "dave@example.org"})
    assert api.post("/api/local-account/activate", query={"token": reset}).status_code == 401
    ghost = email_tokens.make(email_tokens.ACTIVATION, {"old_email": "ghost@example.org", "new_email": None})
    assert api.post("/api/local-account/activate", query={"token": ghost}).status_code == 400
    assert User.get(person.user.id).is_verified is False


def _token_at(purpose, payload, *, hours_ago):
    from chalicelib.store.base import now

    issued = now() - timedelta(hours=hours_ago)
    claims = {**payload, "purpose": purpose, "iat": issued, "exp": issued + email_tokens.LIFETIME}
    return jwt.encode(claims, get_settings().secret_key, algorithm="HS256")


def test_resend_activation_email(api):
    person = make_user("erin@example.org", verified=False)
    r = api.get("/api/local-account/resend_activation_email", token=person.session())
    assert r.status_code == 200 and len(mail_to("erin@example.org")) == 1
    verified = make_user("frank@example.org")
    assert api.get("/api/local-account/resend_activation_email", token=verified.session()).status_code == 400
    assert api.get("/api/local-account/resend_activation_email").status_code == 401
    provisioned = make_user("prov@example.org", provision_number=7)
    assert api.get("/api/local-account/resend_activation_email", token=provisioned.session()).status_code == 403
    oidc = make_user("oidc@example.org")
    oidc.user.update(actions=[User.user_type.set("oidc")])
    assert api.get("/api/local-account/resend_activation_email", token=oidc.session()).status_code == 403


# ----------------------------------------------------------------------------- password reset


def test_password_reset_flow(api):
    make_user("gina@example.org")
    r = api.get("/api/local-account/request_password_reset", query={"email": "gina@example.org"})
    assert r.status_code == 200 and isinstance(body(r), str)
    (mail,) = mail_to("gina@example.org")
    assert "/#/auth/local/reset-password?token=" in mail.body and "24 hours" in mail.body
    token = mail.link_token()
    new = "Brand-New-Pass-22"
    r = api.post("/api/local-account/reset_password", json={"token": token, "new_password": new})
    assert r.status_code == 200 and body(r) == "Success"
    assert login(api, "gina@example.org", new).status_code == 200
    assert login(api, "gina@example.org", PASSWORD).status_code == 401


def test_password_reset_link_works_once(api):
    # GIVEN a reset link that was used (upstream's can be used again for 24 h, spec §8 and §12.5)
    make_user("gus@example.org")
    api.get("/api/local-account/request_password_reset", query={"email": "gus@example.org"})
    token = mail_to("gus@example.org")[0].link_token()
    r = api.post("/api/local-account/reset_password", json={"token": token, "new_password": GOOD})
    assert r.status_code == 200
    # WHEN it is used again THEN it is refused as an invalid link, and the password stays
    r = api.post("/api/local-account/reset_password", json={"token": token, "new_password": "Other-Pass-333"})
    assert r.status_code == 401 and isinstance(body(r)["detail"], str)
    assert login(api, "gus@example.org", GOOD).status_code == 200
    assert login(api, "gus@example.org", "Other-Pass-333").status_code == 401


def test_password_reset_link_dies_when_the_password_changes(api):
    # GIVEN an unused reset link WHEN the owner changes the password while logged in
    person = make_user("gwen@example.org")
    api.get("/api/local-account/request_password_reset", query={"email": "gwen@example.org"})
    token = mail_to("gwen@example.org")[0].link_token()
    r = api.post("/api/local-account/change_user_password", json={"new_password": GOOD, "password": PASSWORD},
                 token=person.session())
    assert r.status_code == 200
    # THEN the link no longer sets a password
    r = api.post("/api/local-account/reset_password", json={"token": token, "new_password": "Other-Pass-333"})
    assert r.status_code == 401
    assert login(api, "gwen@example.org", GOOD).status_code == 200


def test_reset_password_signs_out_every_session_and_api_token(api):
    # GIVEN a browser session, an admin session and an API token
    person = make_user("gil@example.org", admin=True)
    session, admin, script = person.session(), person.session(admin=True), person.api_token()
    api.get("/api/local-account/request_password_reset", query={"email": "gil@example.org"})
    token = mail_to("gil@example.org")[0].link_token()
    # WHEN the password is reset (anonymously, from the mail)
    r = api.post("/api/local-account/reset_password", json={"token": token, "new_password": GOOD})
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    # THEN none of them works any more, and a new login does
    for secret in (session, admin, script):
        assert api.get("/api/users/info", token=secret).status_code == 401
    fresh = cookie_of(login(api, "gil@example.org", GOOD))
    assert [i["name"] for i in body(api.get("/api/users/get_all_token_info", token=fresh))] == ["Unknown device"]


def test_password_reset_is_neutral_and_validates(api):
    make_user("prov2@example.org", provision_number=9)
    same = body(api.get("/api/local-account/request_password_reset", query={"email": "nobody@example.org"}))
    assert same == body(api.get("/api/local-account/request_password_reset", query={"email": "prov2@example.org"}))
    assert mail_to("nobody@example.org") == [] and mail_to("prov2@example.org") == []
    assert api.get("/api/local-account/request_password_reset", query={"email": "nope"}).status_code == 400
    assert api.get("/api/local-account/request_password_reset").status_code == 422


def test_reset_password_errors(api):
    assert api.post("/api/local-account/reset_password", json={"token": "x", "new_password": GOOD}).status_code == 401
    ghost = email_tokens.make(email_tokens.PASSWORD_RESET, {"email": "ghost@example.org"})
    assert api.post("/api/local-account/reset_password", json={"token": ghost, "new_password": GOOD}).status_code == 400
    r = api.post("/api/local-account/reset_password", json={"token": ghost, "new_password": "weak"})
    assert r.status_code == 422 and body(r)["detail"][0]["loc"] == ["body", "new_password"]


# ------------------------------------------------------------------------------ e-mail change


def test_change_email_flow(api):
    person = make_user("hank@example.org")
    token = person.session()
    r = api.post("/api/local-account/change_user_email", json={"new_email": "hank@new.example", "password": PASSWORD},
                 token=token)
    assert r.status_code == 200
    (mail,) = mail_to("hank@new.example")
    # the old address stays active until the link is used
    assert body(api.get("/api/users/info", token=token))["email"] == "hank@example.org"
    assert api.post("/api/local-account/activate", query={"token": mail.link_token()}).status_code == 200
    assert body(api.get("/api/users/info", token=token))["email"] == "hank@new.example"
    assert login(api, "hank@new.example", PASSWORD).status_code == 200
    assert login(api, "hank@example.org", PASSWORD).status_code == 401
    # the old address is free again
    assert api.post("/api/local-account/signup", json={"email": "hank@example.org", "password": GOOD}).status_code == 200


def test_change_email_errors(api, use_settings):
    person = make_user("ivy@example.org")
    make_user("taken2@example.org")
    token = person.session()
    url = "/api/local-account/change_user_email"
    assert api.post(url, json={"new_email": "x@example.org", "password": "wrong"}, token=token).status_code == 403
    assert api.post(url, json={"new_email": "taken2@example.org", "password": PASSWORD}, token=token).status_code == 400
    assert api.post(url, json={"new_email": "bad", "password": PASSWORD}, token=token).status_code == 422
    assert api.post(url, json={"new_email": "x@example.org"}, token=token).status_code == 422
    assert api.post(url, json={"new_email": "x@example.org", "password": PASSWORD}).status_code == 401
    use_settings(settings_with("security.local_account", allowed_email_domains=["example.org"]))
    assert api.post(url, json={"new_email": "x@elsewhere.example", "password": PASSWORD}, token=token).status_code == 400


def test_change_email_link_works_once(api):
    # GIVEN an account that moved from its first address to a second one with link L1, and back
    # to the first with link L2
    person = make_user("lea@example.org")
    session = person.session()
    url = "/api/local-account/change_user_email"
    api.post(url, json={"new_email": "lea@second.example", "password": PASSWORD}, token=session)
    (first,) = mail_to("lea@second.example")
    assert api.post("/api/local-account/activate", query={"token": first.link_token()}).status_code == 200
    api.post(url, json={"new_email": "lea@example.org", "password": PASSWORD}, token=session)
    (back,) = mail_to("lea@example.org")
    assert api.post("/api/local-account/activate", query={"token": back.link_token()}).status_code == 200
    # WHEN L1 is used again (say by whoever reads the second mailbox now)
    r = api.post("/api/local-account/activate", query={"token": first.link_token()})
    # THEN it is refused and the account keeps its address
    assert r.status_code == 400 and isinstance(body(r)["detail"], str)
    assert body(api.get("/api/users/info", token=session))["email"] == "lea@example.org"
    # AND so is L2, whose address the account has now
    assert api.post("/api/local-account/activate", query={"token": back.link_token()}).status_code == 400


def test_an_email_change_link_dies_when_another_one_is_used(api):
    # GIVEN two pending change links of one account WHEN the later one is used
    person = make_user("lou@example.org")
    session = person.session()
    for address in ("lou@one.example", "lou@two.example"):
        api.post("/api/local-account/change_user_email", json={"new_email": address, "password": PASSWORD},
                 token=session)
    (one,), (two,) = mail_to("lou@one.example"), mail_to("lou@two.example")
    assert api.post("/api/local-account/activate", query={"token": two.link_token()}).status_code == 200
    # THEN the earlier one no longer applies (the account changed after it was sent)
    assert api.post("/api/local-account/activate", query={"token": one.link_token()}).status_code == 400
    assert body(api.get("/api/users/info", token=session))["email"] == "lou@two.example"


def test_activation_link_does_not_verify_a_later_account_with_the_address(api):
    # GIVEN an activation link of an account that was deleted before it was used
    r = api.post("/api/local-account/signup", json={"email": "mia@example.org", "password": GOOD})
    assert r.status_code == 200
    (old,) = mail_to("mia@example.org")
    first = cookie_of(login(api, "mia@example.org", GOOD))
    assert api.delete("/api/users/delete", token=first).status_code == 200
    # WHEN a new account signs up with the same address and the old link is posted
    assert api.post("/api/local-account/signup", json={"email": "mia@example.org", "password": GOOD}).status_code == 200
    r = api.post("/api/local-account/activate", query={"token": old.link_token()})
    # THEN the new account is not verified by it; its own link does that
    assert r.status_code == 400
    second = cookie_of(login(api, "mia@example.org", GOOD))
    assert body(api.get("/api/users/info", token=second))["is_verified"] is False
    new = mail_to("mia@example.org")[-1]
    assert api.post("/api/local-account/activate", query={"token": new.link_token()}).status_code == 200


def test_change_email_race_is_400_not_500(api):
    person = make_user("jack@example.org")
    api.post("/api/local-account/change_user_email", json={"new_email": "jill@example.org", "password": PASSWORD},
             token=person.session())
    (mail,) = mail_to("jill@example.org")
    make_user("jill@example.org")  # the address is taken before the link is used (§12.10)
    assert api.post("/api/local-account/activate", query={"token": mail.link_token()}).status_code == 400


def test_change_password(api):
    person = make_user("kim@example.org")
    token = person.session()
    url = "/api/local-account/change_user_password"
    assert api.post(url, json={"new_password": GOOD, "password": "wrong"}, token=token).status_code == 403
    assert api.post(url, json={"new_password": "weak", "password": PASSWORD}, token=token).status_code == 422
    r = api.post(url, json={"new_password": GOOD, "password": PASSWORD}, token=token)
    assert r.status_code == 200
    assert login(api, "kim@example.org", GOOD).status_code == 200
    # the session that changed it stays signed in, with a new token (as after a rotation)
    fresh = cookie_of(r)
    assert fresh != token and api.get("/api/users/info", token=fresh).status_code == 200
    assert api.get("/api/users/info", token=token).status_code == 401


def test_change_password_signs_out_other_sessions_and_api_tokens(api):
    # GIVEN two browser sessions and two API tokens of one account, and another account's session
    person = make_user("kai@example.org")
    here, elsewhere = person.session(), person.session()
    scripts = [person.api_token(), person.api_token()]
    bystander = make_user("kurt@example.org").session()
    # WHEN the password is changed from one session
    r = api.post("/api/local-account/change_user_password", json={"new_password": GOOD, "password": PASSWORD},
                 cookie=here)
    assert r.status_code == 200
    # THEN the other session and the API tokens are signed out
    for secret in (elsewhere, *scripts):
        assert api.get("/api/users/info", token=secret).status_code == 401
    # AND this session goes on under its new cookie: same token record (id, name), fresh secret
    fresh = cookie_of(r)
    infos = body(api.get("/api/users/get_all_token_info", cookie=fresh))
    assert [(i["name"], i["explicit"]) for i in infos] == [("pytest", False)]
    assert api.get("/api/users/info", cookie=here).status_code == 401
    # AND other accounts are untouched
    assert api.get("/api/users/info", token=bystander).status_code == 200


def test_change_password_with_an_api_token_keeps_that_token(api):
    # GIVEN a script that changes the password with its API token, and a browser session
    person = make_user("kit@example.org")
    script, browser = person.api_token(), person.session()
    r = api.post("/api/local-account/change_user_password", json={"new_password": GOOD, "password": PASSWORD},
                 token=script)
    # THEN the script's token goes on as it was (its secret never travels in a cookie) and the
    # session is signed out
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    assert api.get("/api/users/info", token=script).status_code == 200
    assert api.get("/api/users/info", token=browser).status_code == 401


def test_change_password_keeps_the_admin_privileges_of_the_session(api):
    person = make_user("kora@example.org", admin=True)
    r = api.post("/api/local-account/change_user_password", json={"new_password": GOOD, "password": PASSWORD},
                 token=person.session(admin=True))
    assert r.status_code == 200
    infos = body(api.get("/api/users/get_all_token_info", token=cookie_of(r)))
    assert [i["admin_privileges"] for i in infos] == [True]


@pytest.mark.parametrize("path,payload", [
    ("/api/local-account/change_user_password", {"new_password": GOOD, "password": PASSWORD}),
    ("/api/local-account/change_user_email", {"new_email": "z@example.org", "password": PASSWORD}),
])
def test_local_gate_refuses_provisioned_and_non_local(api, path, payload):
    provisioned = make_user("p9@example.org", provision_number=3)
    assert api.post(path, json=payload, token=provisioned.session()).status_code == 403
    ldap = make_user("l9@example.org")
    ldap.user.update(actions=[User.user_type.set("ldap")])
    assert api.post(path, json=payload, token=ldap.session()).status_code == 403
