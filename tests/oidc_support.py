"""A real OpenID provider for the OIDC tests (``tests/clients/oidc_provider.mjs``: the certified
``oidc-provider`` npm package on a loopback port) and a scripted browser for its login pages."""
from __future__ import annotations

import html
import json
import re
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
START_TIMEOUT = 30.0

CLIENT_ID = "wisp"
CLIENT_SECRET = "wisp-test-client-secret"
TAMPER_CLIENT_ID = "wisp-tampered"

# login → claims; the login form of the provider takes any password
ACCOUNTS = {
    "alice": {"email": "Alice@Example.ORG", "email_verified": True, "roles": ["wisp-user"]},
    "bob": {"email": "bob@example.org", "email_verified": False, "roles": ["wisp-user"]},
    "carol": {"email": "carol@example.org", "email_verified": True, "roles": []},
    "dave": {"email": "dave@example.org", "email_verified": True, "roles": ["wisp-admin"]},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Idp:
    process: subprocess.Popen
    issuer: str
    lines: list[str] = field(default_factory=list)

    def rotate_key(self) -> str:
        """A new signing key; the old one is no longer published. Returns the new kid."""
        return str(requests.post(f"{self.issuer}/__test/rotate", timeout=10).json()["kid"])

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.issuer}/__test/stats", timeout=10).json())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_idp(port: int, redirect_uris: list[str]) -> Idp:
    """Start the provider with Wisp's two clients (the second gets tampered ID tokens)."""
    if shutil.which("node") is None or not (CLIENTS_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the OIDC tests need Node.js and tests/clients installed (make test runs npm ci there)")
    config = {
        "port": port,
        "clients": [
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris},
            {"client_id": TAMPER_CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris,
             "token_endpoint_auth_method": "client_secret_post"},
        ],
        "accounts": ACCOUNTS,
        "tamper_clients": [TAMPER_CLIENT_ID],
    }
    process = subprocess.Popen(["node", "oidc_provider.mjs", json.dumps(config)], cwd=CLIENTS_DIR,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    idp = Idp(process, f"http://127.0.0.1:{port}")
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            idp.lines.append(line)
            if line.startswith("READY "):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(START_TIMEOUT):
        idp.stop()
        pytest.fail("the OpenID provider did not start:\n" + "".join(idp.lines))
    return idp


def provider_config(issuer: str, **overrides: Any) -> dict[str, Any]:
    """A ``security.oidc_providers`` entry for the test provider: refresh tokens need offline_access
    and (oidc-provider, as the spec says) prompt=consent."""
    entry: dict[str, Any] = {
        "base_url": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "scopes": ["email", "roles", "offline_access"],
        "additional_authorize_params": {"prompt": "consent"},
        "user_role": {"name": "wisp-user", "field_name": "roles"},
        "admin_role": {"name": "wisp-admin", "field_name": "roles"},
    }
    entry.update(overrides)
    return entry


_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
_HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.S)


def sign_in(session: requests.Session, url: str, login: str, *, stop_at: str | None = None,
            max_steps: int = 20) -> requests.Response | str:
    """Act as a browser from ``url`` on: follow redirects, fill in the provider's login form with
    ``login`` and confirm its consent form. Returns the first redirect target that starts with
    ``stop_at`` (a URL the test serves itself), else the last response."""
    method, data = "GET", None
    for _ in range(max_steps):
        response = session.request(method, url, data=data, allow_redirects=False, timeout=20)
        if response.is_redirect:
            target = urljoin(url, response.headers["Location"])
            if stop_at is not None and target.startswith(stop_at):
                return target
            url, method, data = target, "GET", None
            continue
        form = _FORM.search(response.text) if "text/html" in response.headers.get("content-type", "") else None
        if form is None:
            return response
        fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(form.group(2))}
        if 'name="login"' in form.group(2):
            fields.update(login=login, password="any password")
        url, method, data = urljoin(url, html.unescape(form.group(1))), "POST", fields
    raise AssertionError(f"no end after {max_steps} steps at {url}")
