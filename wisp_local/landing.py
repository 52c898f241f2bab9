"""Wisp's web app at ``/`` for the local stack: the files of ``web/dist`` (built by ``make run``).

Mail links point at the frontend (``client_url``, hash routing): ``{client_url}/local/activate?token=…``
and ``{client_url}/auth/local/reset-password?token=…``, and the OIDC callback redirects to
``client_url`` itself. ``make run`` sets ``client_url`` to ``http://127.0.0.1:<port>/#``, so all of
them open the web app served here, on the API's origin (spec §1.1). A plain Chalice blueprint like
``docs``: it is not part of the API, and it is registered only by ``wisp_local/stack.py``. A deployed
stack serves the same build from its frontend bucket through CloudFront (infra/README.md §3.2).

Only ``/`` and ``/assets/<file>`` (Vite's output: hashed names, so they may be cached for good) are
served; every other path stays the API's (``/api``, ``/docs``, ``/openapi.json``, the 404 fallback).
"""
from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from chalice import Blueprint, Response

blueprint = Blueprint(__name__)

ROOT = Path(__file__).resolve().parent.parent


def dist_dir() -> Path:
    """The built web app (WISP_WEB_DIST overrides ``web/dist``)."""
    return Path(os.environ.get("WISP_WEB_DIST") or ROOT / "web" / "dist")


NOT_BUILT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Wisp (local)</title></head>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Wisp (local)</h1>
<p>The web app is not built: <code>{dist}</code> has no <code>index.html</code>. <code>make run</code>
builds it (with Node.js 20 and npm); <code>make web</code> builds it alone.</p>
<p>Meanwhile the API works: <a href="docs">Swagger UI</a> · <a href="redoc">ReDoc</a> ·
<a href="openapi.json">openapi.json</a></p>
</body></html>
"""

TEXT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html",
              ".svg": "image/svg+xml", ".json": "application/json", ".txt": "text/plain", ".map": "application/json"}


@blueprint.route("/", methods=["GET"], content_types=["*/*"])
def landing_page() -> Response:
    index = dist_dir() / "index.html"
    try:
        body = index.read_text(encoding="utf-8")
    except OSError:
        body = NOT_BUILT.format(dist=dist_dir())
    # no-cache: a new build's index names new asset files
    return Response(body=body.encode("utf-8"), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"})


@blueprint.route("/assets/{name}", methods=["GET"], content_types=["*/*"])
def asset(name: str) -> Response:
    folder = (dist_dir() / "assets").resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        return Response(body=b'{"detail":"Not Found"}', status_code=404, headers={"Content-Type": "application/json"})
    suffix = path.suffix.lower()
    if suffix in TEXT_TYPES:
        return Response(body=path.read_bytes(), status_code=200,
                        headers={"Content-Type": f"{TEXT_TYPES[suffix]}; charset=utf-8",
                                 "Cache-Control": "public, max-age=31536000, immutable"})
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(body=path.read_bytes(), status_code=200,
                    headers={"Content-Type": kind, "Cache-Control": "public, max-age=31536000, immutable"})
