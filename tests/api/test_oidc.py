"""/api/oidc/*: the authorization code flow against a real OpenID provider (spec §3.3).

The provider is the certified ``oidc-provider`` npm package (``tests/clients/oidc_provider.mjs``)
on a loopback port; its login and consent pages are filled in over HTTP as a browser would. Wisp
runs in process (Chalice's test client, moto): the IdP's redirect back to Wisp's callback is
handed to it with the browser's cookies. ``tests/e2e/test_oidc_browser.py`` does the same against
the real local stack over HTTP.
"""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from chalicelib import sealing
from chalicelib.services import oidc
from chalicelib.settings import ConfigError, OidcProviderSettings, parse_settings
from chalicelib.store.tokens import Token
from chalicelib.store.users import Login, User, oidc_login_key
from tests.oidc_support import CLIENT_SECRET, TAMPER_CLIENT_ID, free_port, provider_config, sign_in, start_idp
from tests.support import body, settings_with

WISP = "http://wisp.test"
NAMES = ["Test IdP", "No Refresh", "Tampered", "Open", "No PKCE"]


def callback(name: str) -> str:
    return f"{WISP}/api/oidc/auth/{quote(name.lower(), safe='')}"


@pytest.fixture(scope="module")
def idp():
    started = start_idp(free_port(), [callback(n) for n in NAMES])
    yield started
    started.stop()


@pytest.fixture
def providers(idp, use_settings):
    entries = {
        "Test IdP": provider_config(idp.issuer, icon_url="https://idp.example/icon.svg"),
        "No Refresh": provider_config(idp.issuer, scopes=["email", "roles"]),
        "Tampered": provider_config(idp.issuer, client_id=TAMPER_CLIENT_ID, client_auth_method="client_secret_post"),
        "Open": provider_config(idp.issuer, user_role=None, admin_role=None, hidden=True,
                                allow_creation_of_api_tokens=False),
        "No PKCE": provider_config(idp.issuer, enable_pkce_s256_challenge=False),
    }
    parsed = {name: OidcProviderSettings.model_validate(entry) for name, entry in entries.items()}
    use_settings(settings_with("security", oidc_providers=parsed))
    oidc.reset_caches()
    yield parsed
    oidc.reset_caches()


def cookies_of(response) -> list[str]:
    value = response.headers.get("Set-Cookie")
    return value if isinstance(value, list) else [v for v in [value] if v]


def cookie_value(cookies: list[str], name: str) -> str | None:
    for cookie in cookies:
        key, _, rest = cookie.partition("=")
        if key == name:
            return rest.split(";")[0]
    return None


class Browser:
    """One browser: a cookie jar at the IdP, and Wisp's cookies (kept by hand for the test client)."""

    def __init__(self, api) -> None:
        self.api = api
        self.idp = requests.Session()
        self.flow: str | None = None

    def start(self, name: str):
        r = self.api.get(f"/api/oidc/login/{quote(name, safe='')}")
        if r.status_code == 302:
            self.flow = cookie_value(cookies_of(r), oidc.FLOW_COOKIE)
        return r

    def at_idp(self, start_response, login: str) -> str:
        """The URL the IdP sends the browser back to (Wisp's callback)."""
        target = sign_in(self.idp, start_response.headers["Location"], login, stop_at=WISP)
        assert isinstance(target, str), target.text[:2000]
        return target

    def back(self, target: str, *, flow: str | None = "keep", agent: str = "Browser Test"):
        parts = urlsplit(target)
        cookie = self.flow if flow == "keep" else flow
        headers = {"User-Agent": agent}
        if cookie:
            headers["Cookie"] = f"{oidc.FLOW_COOKIE}={cookie}"
        return self.api.get(f"{parts.path}?{parts.query}", headers=headers)

    def login(self, name: str, login: str):
        return self.back(self.at_idp(self.start(name), login))


def session_of(response) -> str:
    assert response.status_code == 307, (response.status_code, response.body)
    secret = cookie_value(cookies_of(response), "token")
    assert secret
    return secret


# ------------------------------------------------------------------------------------------
# Configuration and the section's presence
# ------------------------------------------------------------------------------------------


def test_section_answers_404_without_providers(api):
    assert api.get("/api/oidc/login/anything").status_code == 404
    assert api.get("/api/oidc/auth/anything").status_code == 404


def test_auth_settings_lists_every_provider_hidden_ones_marked(api, providers):
    listed = body(api.get("/api/auth_settings"))["oidc_providers"]
    assert set(listed) == set(NAMES)
    assert listed["Test IdP"] == {"hidden": False, "icon_url": "https://idp.example/icon.svg",
                                  "allow_creation_of_api_tokens": True}
    assert listed["Open"] == {"hidden": True, "icon_url": None, "allow_creation_of_api_tokens": False}


def test_unknown_provider_is_400_not_500(api, providers):
    for path in ("/api/oidc/login/nobody", "/api/oidc/auth/nobody?code=x&state=y"):
        r = api.get(path)
        assert r.status_code == 400, r.body
        assert isinstance(body(r)["detail"], str)


def _config(provider: dict) -> str:
    return json.dumps({"client_url": "http://wisp.test/#", "security": {"oidc_providers": {"X": provider}}})


@pytest.mark.parametrize("change, key", [
    ({"client_secret": None}, "security.oidc_providers.X"),
    ({"client_secret_arn": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:x"}, "security.oidc_providers.X"),
    ({"base_url": "ftp://idp.example"}, "security.oidc_providers.X.base_url"),
    ({"additional_authorize_params": {"state": "fixed"}}, "security.oidc_providers.X.additional_authorize_params"),
    ({"client_auth_method": "private_key_jwt"}, "security.oidc_providers.X.client_auth_method"),
    ({"ca_pem_file_path": "/nonexistent/ca.pem"}, "security.oidc_providers.X.ca_pem_file_path"),
    ({"user_role": {"name": "r"}}, "security.oidc_providers.X.user_role.field_name"),
    ({"surprise": 1}, "security.oidc_providers.X.surprise"),
])
def test_bad_provider_settings_fail_at_start_naming_the_key(change, key):
    entry = {"base_url": "https://idp.example", "client_id": "c", "client_secret": "s", **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        parse_settings(_config(entry))
    assert key in str(info.value)


def test_provider_names_must_differ_in_urls():
    text = json.dumps({"client_url": "http://wisp.test/#", "security": {"oidc_providers": {
        "Corp": {"base_url": "https://a.example", "client_id": "c", "client_secret": "s"},
        " corp": {"base_url": "https://b.example", "client_id": "c", "client_secret": "s"}}}})
    with pytest.raises(ConfigError, match="security.oidc_providers"):
        parse_settings(text)


def test_client_secret_comes_from_secrets_manager():
    import boto3

    from chalicelib.settings import oidc_client_secret

    arn = boto3.client("secretsmanager").create_secret(Name="wisp/oidc/x", SecretString="from-the-vault\n")["ARN"]
    settings = parse_settings(_config({"base_url": "https://idp.example", "client_id": "c", "client_secret_arn": arn}))
    assert oidc_client_secret(settings.security.oidc_providers["X"]) == "from-the-vault"


# ------------------------------------------------------------------------------------------
# Step 1: the redirect
# ------------------------------------------------------------------------------------------


def test_login_redirects_to_the_idp_with_pkce_nonce_state_and_extra_params(api, providers, idp):
    r = api.get("/api/oidc/login/TEST%20IDP")  # the name in any case
    assert r.status_code == 302, r.body
    location = urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{idp.issuer}/auth"
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["response_type"] == "code" and params["client_id"] == "wisp"
    assert params["redirect_uri"] == callback("Test IdP")
    assert params["scope"].split() == ["openid", "email", "roles", "offline_access"]
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["prompt"] == "consent"
    assert len(params["state"]) >= 43 and len(params["nonce"]) >= 43
    (cookie,) = cookies_of(r)
    assert cookie.startswith(f"{oidc.FLOW_COOKIE}=gcm:")
    attributes = [a.strip() for a in cookie.split(";")[1:]]
    assert set(attributes) == {"Max-Age=600", "Path=/api/oidc/auth/test%20idp", "HttpOnly", "SameSite=Lax"}
    # the cookie keeps state, nonce and verifier unreadable to anyone but the server
    sealed = cookie.split(";")[0].split("=", 1)[1]
    assert params["state"] not in sealed and params["nonce"] not in sealed


def test_pkce_can_be_turned_off(api, providers):
    params = parse_qs(urlsplit(api.get("/api/oidc/login/no%20pkce").headers["Location"]).query)
    assert "code_challenge" not in params and "code_challenge_method" not in params


# ------------------------------------------------------------------------------------------
# Step 2: the callback
# ------------------------------------------------------------------------------------------


def test_full_login_creates_a_verified_oidc_user_with_a_session(api, providers, idp):
    browser = Browser(api)
    r = browser.login("Test IdP", "alice")
    secret = session_of(r)
    assert r.headers["Location"] == "http://wisp.test/#"
    cookies = cookies_of(r)
    assert any(c.startswith(f"{oidc.FLOW_COOKIE}=;") and "Max-Age=0" in c for c in cookies)
    session_cookie = next(c for c in cookies if c.startswith("token="))
    assert session_cookie.endswith("; Path=/; SameSite=lax") and "Max-Age=3600" in session_cookie
    info = body(api.get("/api/users/info", cookie=secret))
    assert info["user_type"] == "oidc" and info["is_verified"] is True
    assert info["email"] == "Alice@example.org"  # normalised as every address (§1.2)
    assert info["provider_name"] == "Test IdP"
    (token,) = body(api.get("/api/users/get_all_token_info", cookie=secret))
    assert token["name"] == "Browser Test" and token["admin_privileges"] is False and token["explicit"] is False
    # the IdP's refresh token is stored, encrypted, on the session
    row = next(iter(Token.scan()))
    assert row.idp_refresh_token.startswith("gcm:")
    refresh = sealing.open_stored(row.idp_refresh_token, purpose=oidc.REFRESH_PURPOSE,
                                  context={"user": str(info["id"])})
    assert len(refresh) > 20 and refresh.decode() not in row.idp_refresh_token
    # a user with verified address passes user+V routes; no admin without the admin role
    assert api.post("/api/users/get_new_api_token", query={"name": "script"}, cookie=secret).status_code == 200
    assert api.post("/api/admins/create_runner", cookie=secret).status_code == 403
    # no local-account routes for OIDC users
    assert api.get("/api/local-account/resend_activation_email", cookie=secret).status_code == 403
    r = api.post("/api/local-account/change_user_password", cookie=secret,
                 json={"password": "x" * 12, "new_password": "y" * 12})
    assert r.status_code == 403


def test_same_user_on_the_next_login_and_its_address_follows_the_idp(api, providers, idp):
    first = body(api.get("/api/users/info", cookie=session_of(Browser(api).login("Test IdP", "alice"))))
    user = User.get(first["id"])
    user.update(actions=[User.email.set("old@example.org")])
    second = body(api.get("/api/users/info", cookie=session_of(Browser(api).login("test idp", "alice"))))
    assert second["id"] == first["id"] and second["email"] == "Alice@example.org"
    assert Login.get(oidc_login_key(idp.issuer, "alice")).user_id == first["id"]


def test_wrong_state_is_400(api, providers):
    browser = Browser(api)
    target = browser.at_idp(browser.start("Test IdP"), "alice")
    forged = target.replace("state=", "state=x")
    r = browser.back(forged)
    assert r.status_code == 400 and "state" in body(r)["detail"]


def test_callback_without_the_flow_cookie_or_with_another_providers_is_400(api, providers):
    browser = Browser(api)
    target = browser.at_idp(browser.start("Test IdP"), "alice")
    assert browser.back(target, flow=None).status_code == 400
    other = Browser(api)
    other.start("Open")
    assert browser.back(target, flow=other.flow).status_code == 400  # sealed for another provider
    assert browser.back(target, flow="gcm:AAAA" + (browser.flow or "")[8:]).status_code == 400  # altered
    assert session_of(browser.back(target))  # the genuine one still works


def test_expired_flow_cookie_is_400(api, providers):
    browser = Browser(api)
    target = browser.at_idp(browser.start("Test IdP"), "alice")
    state = parse_qs(urlsplit(target).query)["state"][0]
    stale = sealing.seal_local(json.dumps({"s": state, "n": "n", "v": "v", "e": int(time.time()) - 1}).encode(),
                               purpose=oidc.FLOW_PURPOSE, context={"provider": "test idp"})
    r = browser.back(target, flow=stale)
    assert r.status_code == 400 and "too long" in body(r)["detail"]


def test_a_code_works_once(api, providers):
    browser = Browser(api)
    target = browser.at_idp(browser.start("Test IdP"), "alice")
    assert browser.back(target).status_code == 307
    r = browser.back(target)
    assert r.status_code == 400, r.body


def test_refusal_at_the_idp_is_400(api, providers):
    # the provider requires PKCE: without it, it sends the browser back with an error
    browser = Browser(api)
    target = browser.at_idp(browser.start("No PKCE"), "alice")
    assert "error=" in target
    r = browser.back(target)
    assert r.status_code == 400, r.body


def test_tampered_id_token_is_401(api, providers):
    r = Browser(api).login("Tampered", "alice")
    assert r.status_code == 401, r.body
    assert r.headers.get("WWW-Authenticate") == "Bearer"
    assert "signature" in body(r)["detail"].lower()
    assert not list(User.scan())


def test_unverified_email_is_403(api, providers):
    r = Browser(api).login("Test IdP", "bob")
    assert r.status_code == 403 and "verified" in body(r)["detail"]
    assert not list(User.scan())


def test_no_refresh_token_is_403(api, providers):
    r = Browser(api).login("No Refresh", "alice")
    assert r.status_code == 403 and "refresh token" in body(r)["detail"]


def test_user_role_missing_is_403_and_not_needed_where_none_is_configured(api, providers):
    r = Browser(api).login("Test IdP", "carol")
    assert r.status_code == 403 and "role" in body(r)["detail"]
    secret = session_of(Browser(api).login("Open", "carol"))
    assert body(api.get("/api/users/info", cookie=secret))["provider_name"] == "Open"
    # this provider allows no API tokens
    r = api.post("/api/users/get_new_api_token", query={"name": "script"}, cookie=secret)
    assert r.status_code == 400


def test_admin_role_gives_an_admin_session_without_scope_or_user_role(api, providers):
    secret = session_of(Browser(api).login("Test IdP", "dave"))
    (token,) = body(api.get("/api/users/get_all_token_info", cookie=secret))
    assert token["admin_privileges"] is True
    assert api.post("/api/admins/create_runner", cookie=secret).status_code == 200
    # API tokens of admins are never admin tokens (§1.3)
    api_token = body(api.post("/api/users/get_new_api_token", query={"name": "s"}, cookie=secret))
    assert api.post("/api/admins/create_runner", token=api_token).status_code == 403


def test_key_rotation_at_the_idp_refetches_its_keys(api, providers, idp):
    session_of(Browser(api).login("Test IdP", "alice"))
    fetched = idp.stats()["jwks_fetches"]
    session_of(Browser(api).login("Test IdP", "alice"))
    assert idp.stats()["jwks_fetches"] == fetched  # cached
    idp.rotate_key()
    session_of(Browser(api).login("Test IdP", "alice"))  # a kid Wisp has not seen: it looks again
    assert idp.stats()["jwks_fetches"] == fetched + 1


def test_deleting_an_oidc_user_removes_account_login_key_and_sessions(api, providers, idp):
    secret = session_of(Browser(api).login("Test IdP", "alice"))
    user_id = body(api.get("/api/users/info", cookie=secret))["id"]
    assert api.delete("/api/users/delete", cookie=secret).status_code == 200
    assert not list(User.scan()) and not list(Token.scan())
    with pytest.raises(Login.DoesNotExist):
        Login.get(oidc_login_key(idp.issuer, "alice"))
    again = body(api.get("/api/users/info", cookie=session_of(Browser(api).login("Test IdP", "alice"))))
    assert again["id"] != user_id


def test_session_rotation_keeps_the_refresh_token(api, providers):
    from chalicelib.services import tokens

    secret = session_of(Browser(api).login("Test IdP", "alice"))
    token = tokens.find(secret)
    assert token is not None and token.idp_refresh_token
    assert tokens.find(tokens.rotate(token) or "").idp_refresh_token == token.idp_refresh_token


def test_idp_down_is_503(api, providers, use_settings):
    dead = provider_config(f"http://127.0.0.1:{free_port()}", client_secret=CLIENT_SECRET)
    use_settings(settings_with("security", oidc_providers={"Dead": OidcProviderSettings.model_validate(dead)}))
    r = api.get("/api/oidc/login/dead")
    assert r.status_code == 503, r.body


def test_authorization_matrix_for_an_oidc_session_and_its_api_token(api, providers, use_settings):
    from chalicelib.settings import TosSettings, get_settings

    secret = session_of(Browser(api).login("Test IdP", "alice"))
    api_token = body(api.post("/api/users/get_new_api_token", query={"name": "script"}, cookie=secret))
    for credentials in ({"cookie": secret}, {"token": api_token}):
        # user+V+T: OIDC users count as verified; no ToS configured yet
        assert api.get("/api/jobs/count", query={"exclude_finished": False, "exclude_downloaded": False},
                       **credentials).status_code == 200
        assert api.post("/api/jobs/submit_settings", json={}, **credentials).status_code == 200
        assert api.get("/api/users/info", **credentials).status_code == 200
        assert api.post("/api/admins/create_runner", **credentials).status_code == 403
        assert api.get("/api/local-account/resend_activation_email", **credentials).status_code == 403
    # a ToS to accept first, as for every user
    tos = {1: TosSettings(name="Terms", version=1, tos_html="<p>t</p>")}
    use_settings(get_settings().model_copy(update={"terms_of_services": tos}))
    query = {"exclude_finished": False, "exclude_downloaded": False}
    assert api.get("/api/jobs/count", query=query, cookie=secret).status_code == 403
    assert api.post("/api/users/accept_tos", query={"tos_id": 1, "tos_version": 1}, cookie=secret).status_code == 200
    assert api.get("/api/jobs/count", query=query, cookie=secret).status_code == 200
    # logout ends the session
    assert api.delete("/api/users/logout", cookie=secret).status_code == 200
    assert api.get("/api/users/info", cookie=secret).status_code == 401
