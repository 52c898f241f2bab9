"""The OpenAPI 3.1 document, generated from the route declarations in ``routes/_http.OPERATIONS``.

Built on the first request to ``/openapi.json`` and cached (never at import: cold starts matter).
Layout follows upstream Project-W's document (operation ids ``<tag>-<function>``, ``ErrorResponse``
and ``HTTPValidationError`` schemas, the two token security schemes) so that clients generated from
either document have the same names. Wisp's own routes carry the tag ``wisp`` and
``x-wisp-extension: true``.
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from . import version
from .auth import USER_GATES
from .routes import _http

REF = "#/components/schemas/{model}"
JSON = _http.JSON

# Upstream calls these "Auth & runner token" and "Auth token"; OpenAPI 3.1 allows only
# [a-zA-Z0-9._-] in component names, so the same schemes get valid names here.
BEARER = "auth-and-runner-token"
COOKIE = "auth-token"

USER_GATES_WITH_403 = USER_GATES - {"user"}

DESCRIPTION = f"""\
{version.DESCRIPTION}

This is the **Project-W REST API v0.6** as served by Wisp: operation ids, paths, parameters and
schemas follow upstream Project-W, so its web frontend, runner and generated clients work unchanged.
Operations tagged `wisp` (and marked `x-wisp-extension: true`) are Wisp extensions that upstream
Project-W does not have.

Authenticate with a user token either as `Authorization: Bearer <token>` or as the cookie `token`
(set by the login routes). Runners use their runner token as Bearer token.

The same document is rendered by [Swagger UI](docs) and [ReDoc](redoc).
"""

TAG_DESCRIPTIONS = {
    "general": "Information about this instance. No authentication needed.",
    "users": "Account and token management for logged-in users.",
    "local-account": "Login, signup and account management for local (e-mail and password) accounts.",
    "oidc": "Login through OpenID Connect identity providers.",
    "ldap": "Login through LDAP directories.",
    "jobs": "Submitting and managing transcription jobs.",
    "runners": "Used by runners to register, fetch jobs and submit transcripts.",
    "admins": "Instance administration: runners, site banners, e-mail to all users.",
    "wisp": "Wisp extensions (not part of the Project-W API).",
}

_AUTH_DESCRIPTION = (
    "A user token from a login route (local account, OIDC or LDAP) or from "
    "/api/users/get_new_api_token. {how}"
)

SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "Bearer",
        "description": _AUTH_DESCRIPTION.format(
            how="Sent as `Authorization: Bearer <token>`, handy for scripts with long-lived API tokens. "
                "Runners send their runner token (from /api/admins/create_runner) here."),
    },
    COOKIE: {
        "type": "apiKey",
        "in": "cookie",
        "name": "token",
        "description": _AUTH_DESCRIPTION.format(
            how="Sent as the cookie `token`, which the login routes set for browser sessions."),
    },
}

_lock = threading.Lock()
_cache: dict[str, Any] = {}


def document() -> dict[str, Any]:
    """The OpenAPI document (built once per set of operations, then cached)."""
    from .routes import all_routers

    all_routers()  # every section's routes declared (a no-op once the app is imported)
    key = len(_http.OPERATIONS)
    cached = _cache.get("document")
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        cached = _cache.get("document")
        if cached is None or cached[0] != key:
            doc = build(_http.OPERATIONS)
            _cache["document"] = (key, doc)
            _cache["json"] = (key, json.dumps(doc, separators=(",", ":"), ensure_ascii=False))
        return _cache["document"][1]


def document_json() -> str:
    """The document serialised (cached alongside ``document()``)."""
    document()
    return _cache["json"][1]


# ------------------------------------------------------------------------------------------
# Building
# ------------------------------------------------------------------------------------------


class _Schemas:
    """Collects every type the operations mention and renders them in one pydantic pass, so the
    models end up once in ``components/schemas`` (with ``-Input``/``-Output`` names where the
    validation and serialization shapes differ)."""

    def __init__(self) -> None:
        self._inputs: list[tuple[int, JsonSchemaMode, TypeAdapter[Any]]] = []
        self._results: dict[tuple[int, JsonSchemaMode], dict[str, Any]] = {}
        self.definitions: dict[str, Any] = {}

    def add(self, tp: Any, mode: JsonSchemaMode) -> tuple[int, JsonSchemaMode]:
        key = (len(self._inputs), mode)
        self._inputs.append((len(self._inputs), mode, _schema_adapter(tp, mode)))
        return key

    def render(self) -> None:
        results, top = TypeAdapter.json_schemas(self._inputs, ref_template=REF)
        self._results = dict(results)
        self.definitions = top.get("$defs", {})

    def __getitem__(self, key: tuple[int, JsonSchemaMode]) -> dict[str, Any]:
        return self._results[key]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if ref and ref.startswith("#/components/schemas/"):
            return self.definitions[ref.rsplit("/", 1)[1]]
        return schema


def _schema_adapter(tp: Any, mode: JsonSchemaMode) -> TypeAdapter[Any]:
    """A TypeAdapter for ``tp``, or for ``Any`` where pydantic cannot describe ``tp``."""
    try:
        adapter = TypeAdapter(tp)
        adapter.json_schema(mode=mode)
        return adapter
    except Exception:  # noqa: BLE001 - an undescribable type documents as "any value"
        return TypeAdapter(Any)


def build(operations: list[_http.Operation]) -> dict[str, Any]:
    schemas = _Schemas()
    error_key = schemas.add(_common("ErrorResponse"), "serialization")
    validation_key = schemas.add(_common("HTTPValidationError"), "serialization")
    planned = []
    for op in operations:
        keys: dict[str, Any] = {}
        if op.query is not None:
            keys["query"] = schemas.add(op.query, "validation")
        if op.body is not None:
            keys["body"] = schemas.add(op.body, "validation")
        keys["response"] = schemas.add(op.response, "serialization")
        planned.append((op, keys))
    schemas.render()

    error_ref = schemas[error_key]
    validation_ref = schemas[validation_key]
    paths: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for op, keys in planned:
        if op.tag not in tags:
            tags.append(op.tag)
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, keys, schemas, error_ref, validation_ref)

    components: dict[str, Any] = {"schemas": dict(sorted(schemas.definitions.items()))}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Wisp",
            "summary": "Serverless speech-to-text speaking the Project-W API v0.6.",
            "description": DESCRIPTION,
            "version": version.VERSION,
        },
        "paths": paths,
        "components": components,
        "tags": [{"name": t, "description": TAG_DESCRIPTIONS[t]} if t in TAG_DESCRIPTIONS else {"name": t}
                 for t in tags],
    }
    _add_multipart_bodies(doc)
    components["schemas"] = _reachable(doc, components["schemas"])
    components["securitySchemes"] = SECURITY_SCHEMES
    return doc


def _common(name: str) -> type[BaseModel]:
    from .schemas import common

    return getattr(common, name)


def _title(op: _http.Operation) -> str:
    return op.name.replace("_", " ").title()


def _operation(op: _http.Operation, keys: dict[str, Any], schemas: _Schemas,
               error_ref: dict[str, Any], validation_ref: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tags": [op.tag],
        "summary": op.summary or _title(op),
        "operationId": op.operation_id,
    }
    if op.description:
        out["description"] = op.description
    security = _security(op.gate)
    if security is not None:
        out["security"] = security
    parameters = _path_parameters(op.path)
    if "query" in keys:
        parameters += _query_parameters(op.query, schemas.resolve(schemas[keys["query"]]))
    if parameters:
        out["parameters"] = parameters
    body = _request_body(op, schemas[keys["body"]] if "body" in keys else None)
    if body is not None:
        out["requestBody"] = body
    out["responses"] = _responses(op, schemas[keys["response"]], error_ref, validation_ref)
    if op.extension:
        out["x-wisp-extension"] = True
    return out


def _security(gate: str | None) -> list[dict[str, list[str]]] | None:
    if gate is None:
        return None
    if gate.startswith("runner"):
        return [{BEARER: []}]
    return [{BEARER: []}, {COOKIE: []}]


_PATH_PARAM = re.compile(r"{([^}+]+)\+?}")


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "title": name.replace("_", " ").title()}}
        for name in _PATH_PARAM.findall(path)
    ]


def _query_parameters(model: type[BaseModel] | None, schema: dict[str, Any]) -> list[dict[str, Any]]:
    if model is None:
        return []
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    lists = _http._list_fields(model)
    params = []
    for name, prop in properties.items():
        prop = dict(prop)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        description = prop.pop("description", None)
        if description:
            param["description"] = description
        param["schema"] = prop
        if name in lists:
            param["style"] = "form"
            param["explode"] = True
        params.append(param)
    return params


def _request_body(op: _http.Operation, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = op.body_format
    if fmt is None:
        return None
    if fmt == "json":
        return {"required": True, "content": {JSON: {"schema": schema if schema is not None else {}}}}
    if fmt == "form":
        return {"required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": schema if schema is not None else {}}}}
    if fmt == "multipart":
        if schema is None:
            schema = {"$ref": REF.format(model=_multipart_name(op))}  # filled by _add_multipart_bodies
        return {"required": True, "content": {"multipart/form-data": {"schema": schema, "encoding": FILE_ENCODING}}}
    return {"required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


# The media types the file part may carry (jobs.upload_media_type): audio or video, or a type that
# says nothing (then the content must be recognisable audio or video). Any other type is a 415.
FILE_ENCODING = {"audio_file": {"contentType": "audio/*, video/*, application/octet-stream"}}


def _multipart_name(op: _http.Operation) -> str:
    return f"Body_{op.operation_id}"


def _add_multipart_bodies(doc: dict[str, Any]) -> None:
    """Multipart routes declared without a body model upload one file, ``audio_file`` (§3.5)."""
    defs = doc["components"]["schemas"]
    for path_item in doc["paths"].values():
        for operation in path_item.values():
            content = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if not content:
                continue
            ref = content["schema"].get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if name.startswith("Body_") and name not in defs:
                defs[name] = {
                    "type": "object",
                    "title": name,
                    "properties": {"audio_file": {"type": "string", "format": "binary", "title": "Audio File"}},
                    "required": ["audio_file"],
                }


_ERROR_DEFAULTS = {
    401: "Not authenticated, or the token is invalid or expired",
    403: "The token does not grant enough permissions",
    422: "Validation Error",
}


def _responses(op: _http.Operation, response_schema: dict[str, Any], error_ref: dict[str, Any],
               validation_ref: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "Successful Response", "content": _content(op, response_schema)}}
    codes: dict[int, str] = {}
    gate = op.gate
    if gate in USER_GATES:
        codes[401] = _ERROR_DEFAULTS[401]
        if gate in USER_GATES_WITH_403:
            codes[403] = _ERROR_DEFAULTS[403]
    elif gate == "runner":
        codes[401] = _ERROR_DEFAULTS[401]
    elif gate == "runner+S":
        codes[401] = _ERROR_DEFAULTS[401]
        codes[403] = "The runner is not registered or the session token does not match"
        codes[422] = _ERROR_DEFAULTS[422]
    codes.update(op.errors)
    if op.query is not None or op.body_format is not None:
        codes.setdefault(422, _ERROR_DEFAULTS[422])
    for code in sorted(codes):
        entry: dict[str, Any] = {"description": codes[code] or _ERROR_DEFAULTS.get(code, "Error")}
        if code == 401 and gate is not None:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        schema = error_ref
        if code == 422:
            validates = op.query is not None or op.body_format is not None or gate == "runner+S"
            if not validates:
                schema = error_ref  # a route that raises 422 itself, in the {detail} shape
            elif code in op.errors:
                schema = {"anyOf": [validation_ref, error_ref]}
            else:
                schema = validation_ref
        entry["content"] = {JSON: {"schema": schema}}
        responses[str(code)] = entry
    return responses


def _content(op: _http.Operation, schema: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for media in (m.strip() for m in (op.response_media or JSON).split(",")):
        if not media:
            continue
        if media == JSON or media.endswith("+json"):
            content[media] = {"schema": schema}
        elif media.startswith("text/"):
            content[media] = {"schema": {"type": "string"}}
        else:
            content[media] = {"schema": {"type": "string", "format": "binary"}}
    return content


def _reachable(doc: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Only the schemas the paths (transitively) refer to; query models are inlined as parameters."""
    seen: set[str] = set()
    todo = _refs(doc["paths"])
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        todo |= _refs(defs[name])
    return {name: schema for name, schema in defs.items() if name in seen}


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    prefix = "#/components/schemas/"
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                found.add(ref[len(prefix):])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
