"""A tiny page at ``/`` for the local stack, so that the links in Wisp's mails can be clicked.

Mail links point at the frontend (``client_url``, hash routing): ``{client_url}/local/activate?token=…``
and ``{client_url}/auth/local/reset-password?token=…``. Locally there is no frontend, so
``make run`` sets ``client_url`` to this page, which reads the hash and calls the API the way the
stock frontend does. After an activation or a password reset (and on its own) it offers a login
form, and once logged in it says where to go next. A plain Chalice blueprint like ``docs``: it is
not part of the API. It is
registered only by ``wisp_local/stack.py``. A deployed API answers ``/`` with the fallback's 404; the
frontend at ``client_url`` (CloudFront, ``infra/``) is what users open there.
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
label { display: block; margin: .4rem 0; }
code { background: #f3f3f3; padding: 0 .2rem; }
#result { margin-top: 1rem; font-weight: bold; }
</style>
</head>
<body>
<h1>Wisp (local)</h1>
<div id="content"></div>
<p id="result" role="status"></p>
<div id="next"></div>
<p>API documentation: <a href="docs">Swagger UI</a> · <a href="redoc">ReDoc</a> ·
<a href="openapi.json">openapi.json</a></p>
<script>
"use strict";
const content = document.getElementById("content");
const result = document.getElementById("result");
const next = document.getElementById("next");

const LOGIN_FORM =
  '<form id="login"><h2>Log in</h2>' +
  '<label>E-mail address: <input type="email" id="email" autocomplete="username" required></label>' +
  '<label>Password: <input type="password" id="password" autocomplete="current-password" required></label>' +
  "<button>Log in</button></form>" +
  "<p>Or log in from the API docs: open <a href=\\"docs#/local-account/local-account-login\\">" +
  "POST /api/local-account/login</a>, press <em>Try it out</em>, fill in <code>username</code> (your " +
  "e-mail address) and <code>password</code>, and press <em>Execute</em>. Scripts use curl with a " +
  "cookie jar or an API token: see \\u201cTranscribe a file\\u201d in the README.</p>";

const LOGGED_IN =
  "<h2>Next: transcribe a file</h2>" +
  "<p>Open the <a href=\\"docs\\">API docs</a>. Every call you try there now sends your session " +
  "cookie. <code>POST /api/jobs/submit_job</code> uploads an audio or video file and returns the " +
  "job id; <code>GET /api/jobs/info</code> shows its progress; " +
  "<code>GET /api/jobs/download_transcript</code> fetches the transcript. The README\u2019s " +
  "\u201cTranscribe a file\u201d does the same with curl.</p>";

function show(ok, text) {
  result.textContent = text;
  result.style.color = ok ? "green" : "crimson";
}

async function call(method, url, init) {
  const response = await fetch(url, { method, credentials: "include", ...init });
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (response.ok) return { ok: true, data };
  let detail = data && data.detail;
  if (Array.isArray(detail)) detail = detail.map(d => d.msg).join("; ");
  return { ok: false, text: `${response.status}: ${detail || response.statusText}` };
}

function json(body) {
  return { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

function offerLogin(intro) {
  next.innerHTML = (intro ? "<p>" + intro + "</p>" : "") + LOGIN_FORM;
  document.getElementById("login").addEventListener("submit", async event => {
    event.preventDefault();
    const email = document.getElementById("email").value;
    const form = new URLSearchParams({ username: email, password: document.getElementById("password").value });
    const answer = await call("POST", "api/local-account/login", { body: form });
    if (!answer.ok) return show(false, answer.text);
    show(true, "You are logged in as " + email + ".");
    next.innerHTML = LOGGED_IN;
  });
}

async function activate(token) {
  content.innerHTML = "<p>Confirming your e-mail address \\u2026</p>";
  const answer = await call("POST", "api/local-account/activate?token=" + encodeURIComponent(token));
  if (answer.ok) {
    content.innerHTML = "";
    show(true, "Your e-mail address is confirmed and your account is active.");
    return offerLogin("Next, log in with the e-mail address and password you signed up with.");
  }
  show(false, answer.text);
  next.innerHTML = "<p>The link may have expired or been used already. Log in and ask for a new one " +
    "with <code>GET /api/local-account/resend_activation_email</code> in the API docs.</p>";
}

function resetPassword(token) {
  content.innerHTML = '<form id="reset"><label>New password: <input type="password" id="pw" ' +
    'autocomplete="new-password" required minlength="12"></label> <button>Set password</button></form>' +
    "<p>At least 12 characters with an upper-case letter, a lower-case letter, a digit and a symbol.</p>";
  document.getElementById("reset").addEventListener("submit", async event => {
    event.preventDefault();
    const answer = await call("POST", "api/local-account/reset_password",
                              json({ token, new_password: document.getElementById("pw").value }));
    if (!answer.ok) return show(false, answer.text);
    content.innerHTML = "";
    show(true, "Your new password is set.");
    offerLogin("Next, log in with it.");
  });
}

function route() {
  const hash = location.hash.replace(/^#/, "");
  const [path, query] = hash.split("?");
  const token = new URLSearchParams(query || "").get("token");
  result.textContent = "";
  next.innerHTML = "";
  if (path === "/local/activate" && token) {
    activate(token);
  } else if (path === "/auth/local/reset-password" && token) {
    resetPassword(token);
  } else {
    content.innerHTML = "<p>This is the local Wisp stack. There is no frontend here: log in below, " +
      "then use the API documentation to submit jobs and download transcripts.</p>";
    offerLogin("");
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
