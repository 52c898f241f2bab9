"""Wisp's web app, served by the real local stack at ``/`` (as ``make run`` serves it), opens in
Debian's headless chromium: a visitor who is not signed in gets the sign-in page."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import ROOT, start_stack

CLIENTS = ROOT / "tests" / "clients"
DIST = ROOT / "web" / "dist"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    missing = [what for what, ok in [
        ("node", shutil.which("node")),
        ("tests/clients/node_modules (make test installs it)", (CLIENTS / "node_modules" / "playwright-core").is_dir()),
        ("chromium", Path("/usr/bin/chromium").exists()),
        ("web/dist (make test builds it)", (DIST / "index.html").is_file()),
    ] if not ok]
    if missing:
        pytest.fail("this test needs: " + ", ".join(missing))
    folder = tmp_path_factory.mktemp("web-smoke")
    started = start_stack(folder / "state", folder / "stack.log")
    yield started
    assert started.stop() == 0


def test_root_serves_the_built_app_and_its_assets(stack):
    page = requests.get(f"{stack.url}/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.text == (DIST / "index.html").read_text(encoding="utf-8")
    script = next(name for name in (DIST / "assets").iterdir() if name.suffix == ".js")
    asset = requests.get(f"{stack.url}/assets/{script.name}", timeout=10)
    assert asset.status_code == 200 and asset.headers["Content-Type"].startswith("text/javascript")
    assert asset.content == script.read_bytes()
    # nothing outside the build is reachable, and the API's paths stay the API's
    assert requests.get(f"{stack.url}/assets/..%2Findex.html", timeout=10).status_code == 404
    assert requests.get(f"{stack.url}/api/about", timeout=10).status_code == 200
    assert requests.get(f"{stack.url}/openapi.json", timeout=10).status_code == 200


def test_a_visitor_gets_the_sign_in_page(stack):
    done = subprocess.run(["node", "web_smoke.mjs", stack.url], cwd=CLIENTS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["hash"] == "#/auth/login", seen
    assert seen["heading"] == "Sign in" and seen["title"] == "Sign in · Wisp", seen
    assert seen["fields"] == {"email": 1, "password": 1}, seen
    assert "Sign in" in seen["buttons"], seen
    assert "Forgot your password?" in seen["links"] and "Create an account" in seen["links"], seen
    assert seen["problems"] == [], seen


def test_pages_pass_an_accessibility_audit_and_work_by_keyboard(stack):
    """axe-core's WCAG 2 A/AA rules (labels, names, contrast, ...) on the visitor's and a signed-in
    user's pages, and the sign-in form reached with Tab alone."""
    from tests.e2e.stack import log_in, sign_up_and_activate

    sign_up_and_activate(stack, "a11y@example.org")
    session = log_in(stack, "a11y@example.org")
    done = subprocess.run(["node", "a11y.mjs", stack.url, session], cwd=CLIENTS, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(seen["pages"]) >= {"#/auth/login", "#/auth/signup", "#/", "#/settings", "#/account"}, seen
    assert seen["control"] == ["label"], seen  # the audit does find what it looks for
    assert {page: found for page, found in seen["pages"].items() if found} == {}, seen["pages"]
    reached = seen["keyboard"]
    assert "username" in reached or "email" in reached, reached
    assert "password" in reached, reached
