"""/api/users/* and the authentication rules of spec §1.3/§1.4."""
from __future__ import annotations

from datetime import timedelta

from chalicelib.services import accounts, tokens
from chalicelib.store.base import now
from chalicelib.store.tokens import Token
from chalicelib.store.users import Login, User
from tests.factories import make_user
from tests.support import body, settings_with


def test_info(api):
    person = make_user("a@example.org")
    r = api.get("/api/users/info", token=person.session())
    assert r.status_code == 200
    assert body(r) == {"id": int(person.user.id), "email": "a@example.org", "accepted_tos": {},
                       "provider_name": "project-W", "user_type": "local", "is_verified": True}


def test_no_token_unknown_token_and_expired_token_are_401(api):
    assert api.get("/api/users/info").status_code == 401
    assert api.get("/api/users/info", token="x" * 43).status_code == 401
    person = make_user()
    secret = person.session()
    token = Token.get(tokens.hash_secret(secret))
    token.update(actions=[Token.expires_at.set(now() - timedelta(seconds=1))])
    r = api.get("/api/users/info", token=secret)
    assert r.status_code == 401 and isinstance(body(r)["detail"], str)


def test_bearer_is_used_exclusively_and_other_schemes_count_as_absent(api):
    person = make_user()
    good = person.session()
    r = api.get("/api/users/info", headers={"Authorization": "Bearer wrong", "Cookie": f"token={good}"})
    assert r.status_code == 401
    r = api.get("/api/users/info", headers={"Authorization": "Basic abc", "Cookie": f"token={good}"})
    assert r.status_code == 200
    assert api.get("/api/users/info", cookie=good).status_code == 200
    r = api.get("/api/users/info", headers={"Cookie": f'other="a;b"; token={good}; bad cookie'})
    assert r.status_code == 200


def test_tokens_are_stored_hashed(api):
    person = make_user()
    secret = person.api_token()
    stored = [t.token_hash for t in Token.scan()]
    assert secret not in stored and tokens.hash_secret(secret) in stored and len(stored[0]) == 43


def test_rolling_session_rotation(api):
    person = make_user()
    secret = person.session()
    token = Token.get(tokens.hash_secret(secret))
    token.update(actions=[Token.expires_at.set(now() + timedelta(minutes=5))])
    r = api.get("/api/users/info", token=secret)
    assert r.status_code == 200
    cookie = r.headers["Set-Cookie"]
    new_secret = cookie.split(";")[0].split("=", 1)[1]
    assert new_secret != secret and "Max-Age=3600" in cookie
    assert api.get("/api/users/info", token=secret).status_code == 401  # the old secret stops at once
    r = api.get("/api/users/info", token=new_secret)
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    rotated = Token.get(tokens.hash_secret(new_secret))
    assert rotated.id == token.id and rotated.expires_at > now() + timedelta(minutes=59)


def test_rotation_cookie_survives_a_failing_request(api):
    # §12.6: upstream loses a rotation decided during a request that then fails
    person = make_user()
    secret = person.session()
    Token.get(tokens.hash_secret(secret)).update(actions=[Token.expires_at.set(now() + timedelta(minutes=5))])
    r = api.post("/api/users/accept_tos", query={"tos_id": 99, "tos_version": 1}, token=secret)
    assert r.status_code == 400 and "Set-Cookie" in r.headers


def test_api_tokens_do_not_rotate_and_never_expire(api):
    person = make_user()
    secret = person.api_token()
    token = Token.get(tokens.hash_secret(secret))
    assert token.expires_at is None and token.explicit and not token.admin_privileges
    assert "Set-Cookie" not in api.get("/api/users/info", token=secret).headers


def test_get_new_api_token(api, use_settings):
    person = make_user()
    session = person.session()
    r = api.post("/api/users/get_new_api_token", query={"name": "my laptop script"}, token=session)
    assert r.status_code == 200
    secret = body(r)
    user_id, _, random_part = secret.partition(".")
    assert user_id == str(person.user.id) and len(random_part) == 43
    assert body(api.get("/api/users/info", token=secret))["id"] == person.user.id
    infos = body(api.get("/api/users/get_all_token_info", token=session))
    api_info = [i for i in infos if i["explicit"]]
    assert api_info[0]["name"] == "my laptop script" and api_info[0]["expires_at"] is None
    assert api.post("/api/users/get_new_api_token", token=session).status_code == 422
    assert api.post("/api/users/get_new_api_token", query={"name": "x"}).status_code == 401
    unverified = make_user(verified=False)
    assert api.post("/api/users/get_new_api_token", query={"name": "x"}, token=unverified.session()).status_code == 403
    use_settings(settings_with("security.local_account", allow_creation_of_api_tokens=False))
    assert api.post("/api/users/get_new_api_token", query={"name": "x"}, token=session).status_code == 400


def test_get_all_token_info_orders_by_last_use_and_hides_expired(api):
    person = make_user()
    first, second = person.session(), person.api_token()
    Token.get(tokens.hash_secret(first)).update(actions=[Token.last_usage.set(now() - timedelta(hours=2))])
    expired = person.session()
    Token.get(tokens.hash_secret(expired)).update(actions=[Token.expires_at.set(now() - timedelta(minutes=1))])
    infos = body(api.get("/api/users/get_all_token_info", token=second))
    assert [i["explicit"] for i in infos] == [True, False]
    assert set(infos[0]) == {"id", "name", "admin_privileges", "explicit", "expires_at", "last_usage"}
    assert infos[1]["expires_at"].endswith("Z") and infos[0]["last_usage"].endswith("Z")


def test_invalidate_token(api):
    person, other = make_user(), make_user()
    mine, spare = person.session(), person.api_token()
    theirs = other.session()
    spare_id = Token.get(tokens.hash_secret(spare)).id
    their_id = Token.get(tokens.hash_secret(theirs)).id
    assert body(api.delete("/api/users/invalidate_token", query={"token_id": their_id}, token=mine)) == "Success"
    assert api.get("/api/users/info", token=theirs).status_code == 200
    assert body(api.delete("/api/users/invalidate_token", query={"token_id": 123456}, token=mine)) == "Success"
    assert body(api.delete("/api/users/invalidate_token", query={"token_id": spare_id}, token=mine)) == "Success"
    assert api.get("/api/users/info", token=spare).status_code == 401
    r = api.delete("/api/users/invalidate_token", query={"token_id": "abc"}, token=mine)
    assert r.status_code == 422 and body(r)["detail"][0]["type"] == "int_parsing"
    assert body(api.delete("/api/users/invalidate_token", token=mine))["detail"][0] == {
        "type": "missing", "loc": ["query", "token_id"], "msg": "Field required", "input": None}
    assert api.delete("/api/users/invalidate_token", query={"token_id": "abc"}).status_code == 401  # gate first


def test_invalidate_all_tokens(api):
    person, other = make_user(), make_user()
    a, b, theirs = person.session(), person.api_token(), other.session()
    assert body(api.delete("/api/users/invalidate_all_tokens", token=a)) == "Success"
    assert api.get("/api/users/info", token=a).status_code == 401
    assert api.get("/api/users/info", token=b).status_code == 401
    assert api.get("/api/users/info", token=theirs).status_code == 200
    assert api.delete("/api/users/invalidate_all_tokens").status_code == 401


def test_invalidate_all_tokens_deletes_in_batches(api, monkeypatch, use_settings):
    # GIVEN more tokens than one BatchWriteItem deletes (25)
    from chalicelib.store.tokens import Token

    use_settings(settings_with("limits", api_tokens_per_user=100))  # more than the default 50
    person = make_user()
    secrets = [person.api_token() for _ in range(60)]
    writes: list[int] = []
    original = Token._get_connection().batch_write_item

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        writes.append(len(kwargs.get("delete_items") or []))
        return original(*args, **kwargs)

    monkeypatch.setattr(Token._get_connection(), "batch_write_item", counting)
    # WHEN all are invalidated THEN every one is gone, in batch writes of at most 25 deletes
    assert body(api.delete("/api/users/invalidate_all_tokens", token=secrets[0])) == "Success"
    assert sum(writes) == 60 and len(writes) == 3 and max(writes) == 25, writes
    assert Token.count() == 0


def test_logout(api):
    person = make_user()
    a, b = person.session(), person.session()
    r = api.delete("/api/users/logout", cookie=a)
    assert body(r) == "Success" and r.headers["Set-Cookie"] == 'token=""; Path=/; SameSite=lax'
    assert api.get("/api/users/info", cookie=a).status_code == 401
    assert api.get("/api/users/info", cookie=b).status_code == 200
    assert api.delete("/api/users/logout").status_code == 401


def _with_tos(use_settings, version: int):
    from chalicelib.settings import TosSettings

    use_settings(settings_with(terms_of_services={3: TosSettings(name="Rules", version=version, tos_html="<p>be nice</p>")}))


def test_accept_tos(api, use_settings):
    _with_tos(use_settings, version=2)
    person = make_user()
    token = person.session()
    assert api.post("/api/users/accept_tos", query={"tos_id": 3, "tos_version": 3}, token=token).status_code == 400
    assert api.post("/api/users/accept_tos", query={"tos_id": 4, "tos_version": 1}, token=token).status_code == 400
    assert api.post("/api/users/accept_tos", query={"tos_id": 3}, token=token).status_code == 422
    assert body(api.post("/api/users/accept_tos", query={"tos_id": 3, "tos_version": 1}, token=token)) == "Success"
    assert body(api.get("/api/users/info", token=token))["accepted_tos"] == {"3": 1}
    assert body(api.post("/api/users/accept_tos", query={"tos_id": 3, "tos_version": 2}, token=token)) == "Success"
    assert body(api.get("/api/users/info", token=token))["accepted_tos"] == {"3": 2}
    about = body(api.get("/api/about"))
    assert about["terms_of_services"] == {"3": {"name": "Rules", "version": 2, "tos_html": "<p>be nice</p>"}}


def test_tos_gate(api, use_settings):
    from chalicelib.auth import authenticate_user
    from chalicelib import errors
    import pytest

    _with_tos(use_settings, version=2)
    person = make_user()
    secret = person.session()

    headers = {"authorization": f"Bearer {secret}"}

    with pytest.raises(errors.Forbidden):
        authenticate_user(headers, "user+V+T")
    accounts.accept_tos(User.get(person.user.id), tos_id=3, tos_version=1)
    with pytest.raises(errors.Forbidden):  # an older version does not satisfy the gate
        authenticate_user(headers, "user+V+T")
    accounts.accept_tos(User.get(person.user.id), tos_id=3, tos_version=2)
    assert authenticate_user(headers, "user+V+T").principal.user.id == person.user.id
    assert authenticate_user(headers, "user").principal.user.id == person.user.id


def test_delete_user(api):
    person, other = make_user("del@example.org"), make_user()
    token = person.session()
    person.api_token()
    r = api.delete("/api/users/delete", token=token)
    assert body(r) == "Success"
    assert api.get("/api/users/info", token=token).status_code == 401
    assert list(Token.by_user.query(person.user.id)) == []
    assert User.count(person.user.id) == 0 and Login.count("local#del@example.org") == 0
    assert api.get("/api/users/info", token=other.session()).status_code == 200
    # the address can be used again
    assert api.post("/api/local-account/signup", json={"email": "del@example.org", "password": "Very-Secret-Pass-1"}).status_code == 200


def test_delete_user_errors(api):
    assert api.delete("/api/users/delete").status_code == 401
    provisioned = make_user(provision_number=5)
    r = api.delete("/api/users/delete", token=provisioned.session())
    assert r.status_code == 403 and User.count(provisioned.user.id) == 1


def test_token_secret_names_its_user_but_the_whole_secret_is_checked(api):
    person, other = make_user(), make_user()
    secret = person.api_token()
    assert api.get("/api/users/info", token=secret).status_code == 200
    _, _, random_part = secret.partition(".")
    forged = f"{other.user.id}.{random_part}"
    assert api.get("/api/users/info", token=forged).status_code == 401
    assert api.get("/api/users/info", token=random_part).status_code == 401


def test_unprefixed_secrets_still_authenticate(api):
    person = make_user()
    legacy = tokens.new_secret()  # issued before secrets named their user
    Token(tokens.hash_secret(legacy), id=999, user_id=person.user.id, name="old", explicit=True).save()
    r = api.get("/api/users/info", token=legacy)
    assert r.status_code == 200 and body(r)["email"] == person.user.email
