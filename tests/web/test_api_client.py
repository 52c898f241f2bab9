"""The web app's generated API client (web/src/api/schema.d.ts) matches Wisp's own /openapi.json.

The document is built in-process, the way /openapi.json serves it, and fed to the pinned
openapi-typescript from web/node_modules (``npm run gen:api``'s generator); the result must equal the
committed file. When it fails: ``make web-api`` regenerates the client; commit it with the API change.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from chalicelib import openapi

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"
COMMITTED = WEB / "src" / "api" / "schema.d.ts"


def test_generated_client_matches_the_apps_openapi_document(tmp_path):
    if not shutil.which("node"):
        pytest.fail("this test needs Node.js 20 (make test checks for it)")
    if not GENERATOR.exists():
        pytest.fail("web/node_modules is missing: npm ci --prefix web (make test does it)")
    document = tmp_path / "openapi.json"
    document.write_text(openapi.document_json(), encoding="utf-8")
    generated = tmp_path / "schema.d.ts"
    done = subprocess.run([str(GENERATOR), str(document), "--output", str(generated)], cwd=WEB,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert generated.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8"), (
        "web/src/api/schema.d.ts is out of date with the API's OpenAPI document: run `make web-api` and commit it")
