"""A tiny page at ``/`` for the local stack, so that the links in Wisp's mails can be clicked.

Mail links point at the frontend (``client_url``, hash routing): ``{client_url}/local/activate?token=…``
and ``{client_url}/auth/local/reset-password?token=…``. Locally there is no frontend, so
``make run`` sets ``client_url`` to this page, which reads the hash and calls the API the way the
stock frontend does. A plain Chalice blueprint like ``docs``: it is not part of the API. It is
registered only by ``chalicelib/local_stack.py``; deployed stacks serve the real frontend at ``/``.
"""
from __future__ import annotations

from chalice import Blueprint, Response

blueprint = Blueprint(__name__)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Wisp (local)</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
input, button { font: inherit; padding: .3rem .6rem; }
#result { margin-top: 1rem; font-weight: bold; }
</style>
</head>
<body>
<h1>Wisp (local)</h1>
<div id="content"></div>
<p id="result" role="status"></p>
<p>API documentation: <a href="docs">Swagger UI</a> · <a href="redoc">ReDoc</a> ·
<a href="openapi.json">openapi.json</a></p>
<script>
"use strict";
const content = document.getElementById("content");
const result = document.getElementById("result");

function show(ok, text) {
  result.textContent = text;
  result.style.color = ok ? "green" : "crimson";
}

async function call(method, url, body) {
  const init = { method, credentials: "include", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (response.ok) return show(true, typeof data === "string" ? data : "Done.");
  let detail = data && data.detail;
  if (Array.isArray(detail)) detail = detail.map(d => d.msg).join("; ");
  show(false, `${response.status}: ${detail || response.statusText}`);
}

function route() {
  const hash = location.hash.replace(/^#/, "");
  const [path, query] = hash.split("?");
  const token = new URLSearchParams(query || "").get("token");
  result.textContent = "";
  if (path === "/local/activate" && token) {
    content.innerHTML = "<p>Confirming your e-mail address …</p>";
    call("POST", "api/local-account/activate?token=" + encodeURIComponent(token));
  } else if (path === "/auth/local/reset-password" && token) {
    content.innerHTML = '<form id="reset"><label>New password: <input type="password" id="pw" ' +
      'autocomplete="new-password" required minlength="12"></label> <button>Set password</button></form>' +
      "<p>At least 12 characters with an upper-case letter, a lower-case letter, a digit and a symbol.</p>";
    document.getElementById("reset").addEventListener("submit", event => {
      event.preventDefault();
      call("POST", "api/local-account/reset_password",
           { token, new_password: document.getElementById("pw").value });
    });
  } else {
    content.innerHTML = "<p>This is the local Wisp stack. There is no frontend here; use the API " +
      "documentation below to sign up, log in, submit jobs and download transcripts.</p>";
  }
}

window.addEventListener("hashchange", route);
route();
</script>
</body>
</html>
"""


@blueprint.route("/", methods=["GET"], content_types=["*/*"])
def landing_page() -> Response:
    return Response(body=PAGE.encode("utf-8"), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"})
