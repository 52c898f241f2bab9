"""``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc`` (outside ``/api``, like upstream).

A plain Chalice blueprint, not a ``_http.Router``: these pages are not part of the API they
document. The pages load their scripts and styles from ``/docs/static/`` (vendored in
``chalicelib/static/``, see its README), never from a CDN. The document is built on first use.
"""
from __future__ import annotations

from pathlib import Path

from chalice import Blueprint, Response

from .. import errors
from ._http import JSON, error_response

blueprint = Blueprint(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Served files and their content types; nothing else in STATIC_DIR is reachable.
STATIC_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
}
_CACHE_ASSET = "public, max-age=86400"
_HTML = "text/html; charset=utf-8"

SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Wisp API - Swagger UI</title>
<link rel="stylesheet" href="{static}swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "{spec}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  withCredentials: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"""

REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Wisp API - ReDoc</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{spec}"></redoc>
<script src="{static}redoc.standalone.js"></script>
</body>
</html>
"""


# Relative URLs: /docs, /redoc, /openapi.json and /docs/static/ are siblings however the API is
# mounted (custom domain, CloudFront path, or the raw API Gateway stage URL).
_STATIC_URL = "docs/static/"
_SPEC_URL = "openapi.json"


@blueprint.route("/openapi.json", methods=["GET"], content_types=["*/*"])
def openapi_json() -> Response:
    from .. import openapi

    return Response(body=openapi.document_json().encode("utf-8"), status_code=200, headers={"Content-Type": JSON})


@blueprint.route("/docs", methods=["GET"], content_types=["*/*"])
def swagger_ui() -> Response:
    page = SWAGGER_PAGE.format(static=_STATIC_URL, spec=_SPEC_URL)
    return Response(body=page.encode("utf-8"), status_code=200, headers={"Content-Type": _HTML})


@blueprint.route("/redoc", methods=["GET"], content_types=["*/*"])
def redoc() -> Response:
    page = REDOC_PAGE.format(static=_STATIC_URL, spec=_SPEC_URL)
    return Response(body=page.encode("utf-8"), status_code=200, headers={"Content-Type": _HTML})


@blueprint.route("/docs/static/{file}", methods=["GET"], content_types=["*/*"])
def static_asset(file: str) -> Response:
    content_type = STATIC_FILES.get(file)
    if content_type is None:
        return error_response(errors.NotFound())
    data = (STATIC_DIR / file).read_bytes()
    return Response(body=data, status_code=200,
                    headers={"Content-Type": content_type, "Cache-Control": _CACHE_ASSET})
