"""The OpenAPI document (/openapi.json) and the documentation pages (/docs, /redoc).

Generic over ``_http.OPERATIONS``: every route module that appears is covered without edits here.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import warnings
from pathlib import Path

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from tests.support import body

# shared/ lies beside the repository (here and in CI's clone); WISP_UPSTREAM_OPENAPI names another place
UPSTREAM = Path(os.environ.get("WISP_UPSTREAM_OPENAPI")
                or Path(__file__).resolve().parents[3] / "shared" / "spec" / "upstream-openapi.json")

# Project-W sections (tags) and the route module that serves each; oidc/ldap are not served (yet).
SECTION_MODULES = {
    "general": "general",
    "users": "users",
    "local-account": "local_account",
    "jobs": "jobs",
    "runners": "runners",
    "admins": "admins",
    "oidc": "oidc",
    "ldap": "ldap",
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# not API operations: 404/405 fallbacks, the docs pages, the local stack's landing page
NOT_DOCUMENTED_MODULES = {"chalicelib.routes.fallback", "chalicelib.routes.docs", "wisp_local.landing"}


@pytest.fixture(scope="module")
def _module_aws():
    """One moto set-up for the whole module: nothing here stores anything."""
    from moto import mock_aws

    from chalicelib import aws, bootstrap
    from chalicelib.settings import get_settings

    get_settings.cache_clear()
    aws.reset_clients()
    with mock_aws():
        bootstrap.ensure_all(get_settings())
        yield
    aws.reset_clients()
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def aws_mock(_module_aws):
    """Replaces the per-test moto set-up of tests/support.py (seconds per test) for this module."""
    yield


@pytest.fixture(scope="module")
def doc():
    from chalicelib import openapi

    return openapi.document()


@pytest.fixture(scope="module")
def upstream():
    """Upstream's document. It is not in the repository (not ours to copy), so a clone without
    ../shared cannot compare: CI (which always has it) fails, elsewhere the skip is announced in
    the warnings summary of every run, not only in the skip count."""
    if not UPSTREAM.exists():
        message = (f"the comparison with upstream Project-W's OpenAPI document did NOT run: {UPSTREAM} is "
                   "missing (put shared/ beside the repository or set WISP_UPSTREAM_OPENAPI)")
        if os.environ.get("CI"):
            pytest.fail(message + "; CI always has it")
        warnings.warn(message, UserWarning, stacklevel=1)
        pytest.skip(message)
    return json.loads(UPSTREAM.read_text())


def _operations(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, op


def _module_exists(tag: str) -> bool:
    module = SECTION_MODULES.get(tag)
    return module is not None and importlib.util.find_spec(f"chalicelib.routes.{module}") is not None


def _params(op):
    """(in, name) → required, for path and query parameters. Header parameters (upstream documents
    ``User-Agent`` on login routes) are not declared by our route layer and are left out."""
    return {(p["in"], p["name"]): p.get("required", False) for p in op.get("parameters", []) if p["in"] in ("path", "query")}


def _ref_name(schema):
    ref = (schema or {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else None


# ------------------------------------------------------------------------------------------
# The document itself
# ------------------------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1")
    validate(doc, cls=OpenAPIV31SpecValidator)
    json.dumps(doc)  # plain JSON all the way down


def test_info(doc):
    from chalicelib import version

    info = doc["info"]
    assert info["title"] == "Wisp"
    assert info["version"] == version.VERSION
    assert "Project-W" in info["description"] and "v0.6" in info["description"]
    assert "x-wisp-extension" in info["description"] and "`wisp`" in info["description"]


def test_served_routes_and_documented_operations_are_the_same(app, doc):
    served = set()
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if entry.view_function.__module__ in NOT_DOCUMENTED_MODULES:
                continue
            served.add((method, path))
    documented = {(method, path) for method, path, _ in _operations(doc)}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_operation_ids_are_unique_and_tag_dash_name(doc):
    from chalicelib.routes import _http

    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    by_id = {o.operation_id: o for o in _http.OPERATIONS}
    for method, path, op in _operations(doc):
        declared = by_id[op["operationId"]]
        assert op["operationId"] == f"{declared.tag}-{declared.name}"
        assert op["tags"] == [declared.tag]
        assert (declared.method, declared.path) == (method, path)
        assert re.fullmatch(r"[a-z][a-z-]*-[A-Za-z0-9_]+", op["operationId"]), op["operationId"]


def test_every_operation_documents_its_errors_and_gate(doc):
    from chalicelib.routes import _http

    by_id = {o.operation_id: o for o in _http.OPERATIONS}
    for _, _, op in _operations(doc):
        declared = by_id[op["operationId"]]
        responses = op["responses"]
        assert "200" in responses
        for code in declared.errors:
            assert _ref_name(responses[str(code)]["content"]["application/json"]["schema"]) in (
                "ErrorResponse", None), (op["operationId"], code)
        if declared.query is not None or declared.body_format is not None:
            assert "422" in responses, op["operationId"]
        if declared.gate is None:
            assert "security" not in op, op["operationId"]
        else:
            assert "401" in responses and op["security"], op["operationId"]
        if declared.gate in ("user+V", "user+V+T", "admin", "local", "user-not-provisioned", "runner+S"):
            assert "403" in responses, op["operationId"]
        if declared.extension:
            assert op["x-wisp-extension"] is True
        else:
            assert "x-wisp-extension" not in op


def test_every_schema_reference_resolves(doc):
    text = json.dumps(doc)
    names = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    assert names <= set(doc["components"]["schemas"]), names - set(doc["components"]["schemas"])
    assert {"ErrorResponse"} <= names


def test_multipart_routes_upload_a_binary_file(doc):
    for _, _, op in _operations(doc):
        content = op.get("requestBody", {}).get("content", {})
        if "multipart/form-data" not in content:
            continue
        schema = content["multipart/form-data"]["schema"]
        name = _ref_name(schema)
        resolved = doc["components"]["schemas"][name] if name else schema
        binaries = [p for p in resolved["properties"].values() if p.get("format") == "binary"]
        assert binaries, op["operationId"]


def test_list_query_parameters_are_exploded_arrays(doc):
    for _, _, op in _operations(doc):
        for param in op.get("parameters", []):
            schema = param["schema"]
            variants = schema.get("anyOf", [schema])
            if any(v.get("type") == "array" for v in variants):
                assert param.get("explode") is True and param.get("style") == "form", (op["operationId"], param)


# ------------------------------------------------------------------------------------------
# Compared with upstream Project-W's document
# ------------------------------------------------------------------------------------------


def test_project_w_operations_match_upstream(doc, upstream):
    ours = {op["operationId"]: (method, path, op) for method, path, op in _operations(doc)}
    problems = []
    compared = 0
    for method, path, up in _operations(upstream):
        op_id = up["operationId"]
        tag = up["tags"][0]
        if not _module_exists(tag):
            continue  # section not written yet (or not served, like oidc/ldap): nothing to compare
        if op_id not in ours:
            same_route = [i for i, (m, p, _) in ours.items() if (m, p) == (method, path)]
            hint = f"; served as {same_route[0]} (declare name=...)" if same_route else ""
            problems.append(f"{op_id}: missing ({method} {path}){hint}")
            continue
        compared += 1
        our_method, our_path, op = ours[op_id]
        if (our_method, our_path) != (method, path):
            problems.append(f"{op_id}: {our_method} {our_path} != upstream {method} {path}")
        if _params(op) != _params(up):
            problems.append(f"{op_id}: parameters {_params(op)} != upstream {_params(up)}")
        our_body = sorted(op.get("requestBody", {}).get("content", {}))
        up_body = sorted(up.get("requestBody", {}).get("content", {}))
        if our_body != up_body:
            problems.append(f"{op_id}: request body {our_body} != upstream {up_body}")
        if op.get("tags") != up.get("tags"):
            problems.append(f"{op_id}: tags {op.get('tags')} != upstream {up.get('tags')}")
        if ("security" in op) != ("security" in up):
            problems.append(f"{op_id}: authentication documented {'security' in op}, upstream {'security' in up}")
    assert not problems, "\n".join(problems)
    assert compared >= 2  # at least the general section


def test_project_w_model_names_match_upstream(doc, upstream):
    """Generated clients name their types after the schemas: keep upstream's model names for JSON
    request bodies and 200 responses (FastAPI's synthetic ``Body_*`` names excepted)."""
    ours = {op["operationId"]: op for _, _, op in _operations(doc)}
    problems = []
    for _, _, up in _operations(upstream):
        op = ours.get(up["operationId"])
        if op is None:
            continue
        up_body = _ref_name(up.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
        our_body = _ref_name(op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
        if up_body and not up_body.startswith("Body_") and our_body not in (up_body, f"{up_body}-Input"):
            problems.append(f"{up['operationId']}: request body {our_body} != upstream {up_body}")
        up_resp = _ref_name(up["responses"]["200"].get("content", {}).get("application/json", {}).get("schema"))
        our_resp = _ref_name(op["responses"]["200"].get("content", {}).get("application/json", {}).get("schema"))
        if up_resp and our_resp not in (up_resp, f"{up_resp}-Output"):
            problems.append(f"{up['operationId']}: response {our_resp} != upstream {up_resp}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------


def test_openapi_json_is_served_as_exact_application_json(api, doc):
    r = api.get("/openapi.json")
    assert r.status_code == 200
    assert body(r) == json.loads(json.dumps(doc))


def test_openapi_json_wrong_method_is_405(api):
    r = api.post("/openapi.json")
    assert r.status_code == 405
    assert body(r) == {"detail": "Method Not Allowed"}


_URL_ATTR = re.compile(r'(?:src|href)\s*=\s*"([^"]*)"|url:\s*"([^"]*)"|spec-url="([^"]*)"')


def _local_urls(html: str) -> list[str]:
    urls = [next(g for g in m.groups() if g is not None) for m in _URL_ATTR.finditer(html)]
    assert urls
    return urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_only_local_assets(api, page):
    r = api.get(page)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    html = r.body.decode("utf-8") if isinstance(r.body, bytes) else r.body
    assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+", html), "page refers to another host"
    for url in _local_urls(html):
        assert not re.match(r"(?i)^[a-z][a-z0-9+.-]*:", url) and not url.startswith("//"), url
        served = "/" + url.lstrip("/")  # relative to the site root: /docs and /redoc are top-level
        asset = api.get(served)
        assert asset.status_code == 200, served
        assert len(asset.body) > 1000, served
        if served.endswith(".js"):
            assert asset.headers["Content-Type"].startswith("text/javascript")
        elif served.endswith(".css"):
            assert asset.headers["Content-Type"].startswith("text/css")
        elif served.endswith(".json"):
            assert asset.headers["Content-Type"] == "application/json"


def test_unknown_static_asset_is_404(api):
    for name in ("nope.js", "README.md", "..%2Fopenapi.py", "licenses"):
        r = api.get(f"/docs/static/{name}")
        assert r.status_code == 404
        assert body(r) == {"detail": "Not Found"}
