"""OIDC login through the real local stack over HTTP, with a real OpenID provider (oidc-provider)
and a browser's cookie jar: Wisp's login redirect → the provider's login and consent pages →
Wisp's callback → the ``token`` cookie → /api/users/info."""
from __future__ import annotations

import json

import pytest
import requests

from tests.oidc_support import TAMPER_CLIENT_ID, free_port, provider_config, sign_in, start_idp

from .stack import start_stack


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One stack with two OIDC providers (the second gets tampered ID tokens), and the provider."""
    tmp = tmp_path_factory.mktemp("oidc")
    idp_port = free_port()
    issuer = f"http://127.0.0.1:{idp_port}"
    config = {
        "client_url": "${WISP_CLIENT_URL}",
        "security": {"oidc_providers": {
            "Test IdP": provider_config(issuer),
            "Tampered": provider_config(issuer, client_id=TAMPER_CLIENT_ID, client_auth_method="client_secret_post"),
        }},
    }
    # JSON is YAML; the client URL comes from the stack's environment
    text = json.dumps(config).replace('"${WISP_CLIENT_URL}"', '!ENV "${WISP_CLIENT_URL}"')
    (tmp / "config.yml").write_text(text)
    stack = start_stack(tmp / "state", tmp / "stack.log", WISP_CONFIG=str(tmp / "config.yml"))
    idp = start_idp(idp_port, [f"{stack.url}/api/oidc/auth/test%20idp", f"{stack.url}/api/oidc/auth/tampered"])
    yield stack, idp
    idp.stop()
    stack.stop()


def browser_login(stack, name: str, login: str) -> tuple[requests.Session, requests.Response]:
    """A fresh browser clicks the provider's button (spec §2: /api/oidc/login/<name lower-cased>)
    and signs in; returns the browser and Wisp's answer on its callback."""
    browser = requests.Session()
    browser.headers["User-Agent"] = "E2E Browser"
    r = browser.get(f"{stack.url}/api/oidc/login/{name.lower()}", allow_redirects=False)
    assert r.status_code == 302, r.text
    assert "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Lax" in r.headers["Set-Cookie"]
    callback = sign_in(browser, r.headers["Location"], login, stop_at=f"{stack.url}/api/oidc/auth/")
    assert isinstance(callback, str), callback.text[:2000]
    return browser, browser.get(callback, allow_redirects=False)


def test_browser_login_sets_the_session_cookie(world):
    stack, _idp = world
    browser, r = browser_login(stack, "Test IdP", "alice")
    assert r.status_code == 307, r.text
    assert r.headers["Location"] == f"{stack.url}/#"
    # both cookies arrive over real HTTP: the session, and the login state cleared
    assert browser.cookies.get("token")
    assert not any(c.name == "wisp_oidc_flow" and c.value for c in browser.cookies)
    # the frontend's next call, with the cookie the browser now holds
    info = browser.get(f"{stack.url}/api/users/info").json()
    assert info["user_type"] == "oidc" and info["provider_name"] == "Test IdP"
    assert info["email"] == "Alice@example.org" and info["is_verified"] is True
    tokens = browser.get(f"{stack.url}/api/users/get_all_token_info").json()
    assert [t["name"] for t in tokens] == ["E2E Browser"]
    # the landing page is where the redirect leads
    assert browser.get(r.headers["Location"]).status_code == 200


def test_admin_role_and_auth_settings(world):
    stack, _idp = world
    settings = requests.get(f"{stack.url}/api/auth_settings").json()
    assert set(settings["oidc_providers"]) == {"Test IdP", "Tampered"}
    browser, r = browser_login(stack, "Test IdP", "dave")
    assert r.status_code == 307, r.text
    (token,) = browser.get(f"{stack.url}/api/users/get_all_token_info").json()
    assert token["admin_privileges"] is True


@pytest.mark.parametrize("name, login, status", [
    ("Test IdP", "bob", 403),  # unverified address
    ("Test IdP", "carol", 403),  # no user role
    ("Tampered", "alice", 401),  # ID token altered after signing
])
def test_refusals(world, name, login, status):
    stack, _idp = world
    browser, r = browser_login(stack, name, login)
    assert r.status_code == status, r.text
    assert "token" not in browser.cookies


def test_key_rotation_at_the_provider(world):
    stack, idp = world
    assert browser_login(stack, "Test IdP", "alice")[1].status_code == 307
    before = idp.stats()["jwks_fetches"]
    idp.rotate_key()
    browser, r = browser_login(stack, "Test IdP", "alice")
    assert r.status_code == 307, r.text
    assert idp.stats()["jwks_fetches"] == before + 1  # the unknown kid made Wisp fetch the keys again
    assert browser.get(f"{stack.url}/api/users/info").status_code == 200


def test_the_provider_button_works_in_a_real_browser(world):
    """Project-W's frontend shows a button per provider that navigates to /api/oidc/login/<name>;
    headless chromium follows it through the provider's pages and back to client_url, with the
    cookie set where the frontend reads it (not HttpOnly, spec §1.3)."""
    import subprocess

    from .stack import ROOT

    stack, _idp = world
    done = subprocess.run(["node", "oidc_browser.mjs", stack.url, "test idp", "alice"], cwd=ROOT / "tests" / "clients",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["landed"].startswith(f"{stack.url}/")
    assert "token=" in seen["cookie"]
    assert seen["info"]["status"] == 200 and seen["info"]["body"]["user_type"] == "oidc"
