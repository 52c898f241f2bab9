"""No input, however malformed, produces a 500 or a half-written record.

Every operation in ``_http.OPERATIONS`` (so every route module, present and future) gets malformed
requests derived from its own declaration: broken and wrongly typed JSON, huge and deeply nested
values, missing and wrong content types, bytes that are not UTF-8, NUL bytes, odd unicode, query
parameters of the wrong type or repeated, odd credentials, sent without a token and with a valid
token (a verified admin user; runner routes with a registered runner where the admin routes can
make one). Each answer must be below 500 and, unless it is a success, JSON in the ``{detail}`` shape.
After every rejected request the stored state (tables and bucket) must be unchanged.

The sweep runs as a few tests over all operations, not one test per operation: each test pays for
the moto set-up once, which keeps the whole file well under a minute.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from pydantic import TypeAdapter

MB = 1_000_000
HUGE = "a" * MB
ODD_UNICODE = "é漢字🎙\u202e\u0301\ufeff"
NUL = "a\x00b"
BIG_INT = 10**40  # more significant digits than DynamoDB numbers take (38)

# Query values that are wrong for most types (ints, bools, enums) or odd for strings.
BAD_QUERY_VALUES = ["", "abc", "1.5", "-1", "9" * 50, "NaN", NUL, ODD_UNICODE, "a" * 20_000]
RAW_QUERIES = ["%ZZ=1&a=%FF%FE", "&&&==&=;;;", "%00=%00&" + "x" * 5000 + "=1"]


def _nested(depth: int, open_: str, close: str) -> bytes:
    return (open_ * depth + close * depth).encode()


# Whole JSON bodies that are broken, the wrong shape, or pathological.
RAW_JSON_BODIES = {
    "broken object": b'{"a": ',
    "broken array": b"[1, 2",
    "trailing garbage": b"{} xyz",
    "not utf-8": b'{"a": "\xff\xfe"}',
    "utf-16": '{"a": 1}'.encode("utf-16"),
    "bom": b'\xef\xbb\xbf{"a": 1}',
    "null": b"null",
    "huge number": b"1e999",
    "nan": b"NaN",
    "string": b'"x"',
    "empty object": b"{}",
    "array of junk": b'[null, {}, [], "x", 1.5, true]',
    "huge string": json.dumps(HUGE).encode(),
    "nul": b'{"a": "\\u0000"}',
    "lone surrogate": b'{"a": "\\ud800"}',
    "deep lists 100000": _nested(100_000, "[", "]"),
    "deep objects 900": b'{"a":' * 900 + b"1" + b"}" * 900,
    "deep objects 60": b'{"a":' * 60 + b"1" + b"}" * 60,
}

WRONG_JSON_VALUES = [None, [], {}, "x", 1.5, -1, BIG_INT, NUL, HUGE, {"a": HUGE}]

AUTH_HEADERS = [
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer    "},
    {"Authorization": "Bearer a\x00b"},
    {"Authorization": "Bearer " + "a" * 10_000},
    {"Authorization": "Bearer " + ODD_UNICODE},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "bearer x y z"},
    {"Cookie": "token="},
    {"Cookie": 'token="unterminated'},
    {"Cookie": "token=" + ODD_UNICODE},
    {"Cookie": "=;;;token=a;=;"},
    {"Cookie": "token=a; token=b"},
    {"Cookie": "token=" + "a" * 10_000},
]

SLOW_REQUEST_S = 3.0  # a handler this slow on one fuzz input (a stream?) gets no more inputs


@dataclass
class Sent:
    label: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Sweep:
    client: Any
    failures: list[str] = field(default_factory=list)
    count: int = 0
    slow: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def send(self, op: Any, sent: Sent, *, who: str) -> Any:
        self.count += 1
        started = time.monotonic()
        try:
            r = self.client.http.request(sent.method, sent.path, headers=sent.headers, body=sent.body)
        except Exception as exc:  # noqa: BLE001 - the test client itself blew up: that is a finding too
            self.failures.append(f"{op.operation_id} [{who}] {sent.label}: client raised {exc!r}")
            return None
        finally:
            self.seconds[op.operation_id] = self.seconds.get(op.operation_id, 0.0) + time.monotonic() - started
        problem = _problem(r)
        if problem:
            self.failures.append(f"{op.operation_id} [{who}] {sent.label}: {problem} "
                                 f"(path {sent.path[:120]!r}, body {sent.body[:120]!r})")
        return r


def _problem(r: Any) -> str | None:
    if r.status_code >= 500:
        return f"status {r.status_code}: {r.body[:300]!r}"
    if r.status_code < 400:
        return None
    if r.headers.get("Content-Type") != "application/json":
        return f"status {r.status_code} with Content-Type {r.headers.get('Content-Type')!r}"
    try:
        data = json.loads(r.body)
    except ValueError:
        return f"status {r.status_code} with a body that is not JSON: {r.body[:200]!r}"
    if not isinstance(data, dict) or set(data) != {"detail"}:
        return f"status {r.status_code} not in the detail shape: {r.body[:200]!r}"
    return None


# ------------------------------------------------------------------------------------------
# Plausible values from a JSON schema (valid-looking, so that malformed parts reach the handler)
# ------------------------------------------------------------------------------------------


def _resolve(schema: dict, defs: dict) -> dict:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def plausible(schema: dict, defs: dict, text: str = "x", depth: int = 0) -> Any:
    schema = _resolve(schema, defs)
    if depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            variants = [v for v in schema[key] if _resolve(v, defs).get("type") != "null"] or schema[key]
            return plausible(variants[0], defs, text, depth + 1)
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        out = {name: plausible(prop, defs, text, depth + 1) for name, prop in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties")
        if not out and isinstance(extra, dict):
            key_schema = schema.get("propertyNames", {"type": "string"})
            out = {str(plausible(key_schema, defs, "1", depth + 1)): plausible(extra, defs, text, depth + 1)}
        return out
    if kind == "array":
        items = schema.get("items", {})
        return [plausible(items, defs, text, depth + 1) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return max(int(low), min(1, int(schema.get("maximum", 1))))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", 100)
        return float(min(max(low, 1.0), high))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "email" or "email" in schema.get("title", "").lower():
        return "fuzz@example.com"
    if fmt == "date-time":
        return "2026-01-01T00:00:00Z"
    if fmt == "binary":
        return "x"
    if text == "x" and schema.get("minLength"):
        return "x" * schema["minLength"]
    return text


def _schema(tp: Any) -> tuple[dict, dict]:
    try:
        schema = TypeAdapter(tp).json_schema(mode="validation")
    except Exception:  # noqa: BLE001
        return {}, {}
    return schema, schema.get("$defs", {})


def _is_string_schema(schema: dict, defs: dict) -> bool:
    schema = _resolve(schema, defs)
    variants = schema.get("anyOf", [schema])
    return any(_resolve(v, defs).get("type") == "string" for v in variants)


# ------------------------------------------------------------------------------------------
# Inputs per operation
# ------------------------------------------------------------------------------------------


@dataclass
class Context:
    """Values that make the plausible parts of a request valid (filled during the sweep)."""

    session_token: str | None = None


def _path(op: Any, value: str = "1") -> str:
    return re.sub(r"{[^}]+}", quote(value, safe=""), op.path)


def _query_fields(op: Any) -> tuple[dict[str, Any], set[str]]:
    from chalicelib.routes import _http

    if op.query is None:
        return {}, set()
    schema, defs = _schema(op.query)
    fields = {name: prop for name, prop in _resolve(schema, defs).get("properties", {}).items()}
    values = {}
    for name, prop in fields.items():
        value = plausible(prop, defs)
        values[name] = json.dumps(value) if isinstance(value, dict) else value
    return values, _http._list_fields(op.query)


def _encode_query(values: dict[str, Any]) -> str:
    pairs = []
    for name, value in values.items():
        if isinstance(value, list):
            pairs.extend((name, _q(v)) for v in value)
        else:
            pairs.append((name, _q(value)))
    return urlencode(pairs)


def _q(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _with_session(values: dict[str, Any], ctx: Context) -> dict[str, Any]:
    if "session_token" in values and ctx.session_token:
        values = dict(values, session_token=ctx.session_token)
    return values


def query_variants(op: Any, ctx: Context) -> list[tuple[str, str]]:
    """(label, query string) pairs: the plausible query first, then malformed ones."""
    good, lists = _query_fields(op)
    good = _with_session(good, ctx)
    out = [("plausible query", _encode_query(good))]
    if op.query is None:
        out += [("unexpected query", "a=1&a=2&" + quote(NUL) + "=" + quote(ODD_UNICODE))]
        return out
    out.append(("no query", ""))
    for bad in BAD_QUERY_VALUES:
        every = {name: ([bad, bad] if name in lists else bad) for name in good}
        out.append((f"every parameter = {bad[:20]!r}", _encode_query(_with_session(every, ctx) if bad else every)))
    for name in good:
        for bad in ("abc", ""):
            out.append((f"{name} = {bad!r}", _encode_query(dict(good, **{name: [bad] if name in lists else bad}))))
        out.append((f"{name} repeated", _encode_query(good) + "&" + urlencode({name: "zz"})))
        if name in lists:
            out.append((f"{name} x1000", _encode_query(dict(good, **{name: ["1"] * 1000}))))
            out.append((f"{name} comma list", _encode_query(dict(good, **{name: "1,2,3"}))))
    for raw in RAW_QUERIES:
        out.append((f"raw query {raw[:20]!r}", _encode_query(good) + "&" + raw))
    return out


def body_variants(op: Any) -> list[tuple[str, dict[str, str], bytes]]:
    """(label, headers, body) triples for the route's body format."""
    fmt = op.body_format
    json_type = {"Content-Type": "application/json"}
    out: list[tuple[str, dict[str, str], bytes]] = []
    if fmt is None:
        out += [("junk body", json_type, b'{"a": [1, 2'), ("binary junk body", {"Content-Type": "audio/ogg"}, os.urandom(512))]
        return out
    if fmt == "json":
        schema, defs = _schema(op.body)
        good = plausible(schema, defs)
        out.append(("plausible body", json_type, json.dumps(good).encode()))
        out.append(("no body", {}, b""))
        out.append(("whitespace body", json_type, b"  \n "))
        for label, raw in RAW_JSON_BODIES.items():
            out.append((label, json_type, raw))
        for content_type in (None, "text/plain", "multipart/form-data; boundary=zz", "\x00"):
            out.append((f"content type {content_type!r}", {} if content_type is None else {"Content-Type": content_type},
                        json.dumps(good).encode()))
        for text, label in ((ODD_UNICODE, "unicode"), (NUL, "NUL"), (HUGE, "1 MB")):
            out.append((f"every string {label}", json_type, json.dumps(plausible(schema, defs, text)).encode()))
        resolved = _resolve(schema, defs)
        if isinstance(good, dict):
            for wrong in WRONG_JSON_VALUES:
                every = {name: wrong for name in good}
                out.append((f"every field = {_short(wrong)}", json_type, json.dumps(every).encode()))
            for name, prop in resolved.get("properties", {}).items():
                wrong = 123 if _is_string_schema(prop, defs) else "x"
                for value in (wrong, [], None):
                    out.append((f"{name} = {_short(value)}", json_type, json.dumps(dict(good, **{name: value})).encode()))
            out.append(("list instead of object", json_type, json.dumps([good]).encode()))
            out.append(("extra fields", json_type, json.dumps(dict(good, zz=HUGE, __proto__={"a": 1})).encode()))
        elif isinstance(good, list):
            for wrong in WRONG_JSON_VALUES:
                out.append((f"every item = {_short(wrong)}", json_type, json.dumps([wrong, wrong]).encode()))
            out.append(("object instead of list", json_type, json.dumps({"a": good}).encode()))
            out.append(("100000 items", json_type, json.dumps(good * 100_000).encode()))
            out.append(("huge ints", json_type, json.dumps([BIG_INT, -BIG_INT, 2**63, -(2**63)]).encode()))
        return out
    if fmt == "form":
        schema, defs = _schema(op.body)
        good = {k: _q(v) for k, v in (plausible(schema, defs) or {}).items() if v is not None}
        form_type = {"Content-Type": "application/x-www-form-urlencoded"}
        out.append(("plausible form", form_type, urlencode(good).encode()))
        out.append(("no body", form_type, b""))
        out.append(("not utf-8", form_type, b"username=\xff\xfe&password=\xc3"))
        out.append(("broken escapes", form_type, b"%ZZ=%&&==&username"))
        out.append(("json to a form route", {"Content-Type": "application/json"}, json.dumps(good).encode()))
        out.append(("no content type", {}, urlencode(good).encode()))
        for text, label in ((ODD_UNICODE, "unicode"), (NUL, "NUL"), (HUGE, "1 MB")):
            out.append((f"every field {label}", form_type, urlencode({k: text for k in good}).encode()))
        out.append(("repeated keys", form_type, (urlencode(good) + "&" + urlencode(good)).encode()))
        out.append(("multipart without boundary", {"Content-Type": "multipart/form-data"}, b"junk"))
        out.append(("broken multipart", {"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz\r\njunk"))
        out.append(("multipart form", *_multipart([(k, None, None, v.encode()) for k, v in good.items()])))
        return out
    if fmt == "multipart":
        out.append(("no body", {}, b""))
        out.append(("multipart without boundary", {"Content-Type": "multipart/form-data"}, b"junk"))
        out.append(("broken multipart", {"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz\r\njunk"))
        out.append(("empty multipart", {"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz--\r\n"))
        out.append(("json instead", {"Content-Type": "application/json"}, b'{"audio_file": "x"}'))
        out.append(("not a file", *_multipart([("audio_file", None, None, b"x")])))
        out.append(("text file", *_multipart([("audio_file", "a.txt", "text/plain", b"hello")])))
        out.append(("no content type", *_multipart([("audio_file", "a.ogg", None, b"OggS")])))
        out.append(("bare audio/", *_multipart([("audio_file", "a.ogg", "audio/", b"OggS")])))
        out.append(("odd filename", *_multipart([("audio_file", ODD_UNICODE + NUL + ".ogg", "audio/ogg", b"OggS")])))
        out.append(("long filename", *_multipart([("audio_file", "a" * 5000 + ".ogg", "audio/ogg", b"OggS")])))
        out.append(("empty filename", *_multipart([("audio_file", "", "audio/ogg", b"OggS")])))
        out.append(("empty file", *_multipart([("audio_file", "a.ogg", "audio/ogg", b"")])))
        out.append(("odd content type", *_multipart([("audio_file", "a.ogg", "audio/\x00;;=", b"OggS")])))
        out.append(("wrong field name", *_multipart([("file", "a.ogg", "audio/ogg", b"OggS")])))
        out.append(("100 parts", *_multipart([(f"f{i}", None, None, b"x") for i in range(100)])))
        out.append(("not utf-8 headers", {"Content-Type": "multipart/form-data; boundary=zz"},
                    b'--zz\r\nContent-Disposition: form-data; name="audio_file"; filename="\xff\xfe.ogg"\r\n'
                    b"Content-Type: audio/ogg\r\n\r\nOggS\r\n--zz--\r\n"))
        return out
    return [("no body", {}, b""), ("random bytes", {"Content-Type": "application/octet-stream"}, os.urandom(4096))]


def _multipart(parts: list[tuple[str, str | None, str | None, bytes]]) -> tuple[dict[str, str], bytes]:
    boundary = "fuzzboundary7MA4YWxkTrZu0gW"
    chunks = []
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode("utf-8", "surrogatepass") + b"\r\n" + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, b"".join(chunks)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def requests_for(op: Any, ctx: Context, *, full: bool) -> list[Sent]:
    """Malformed requests for ``op``. ``full=False``: only what matters before the gate."""
    queries = query_variants(op, ctx)
    bodies = body_variants(op)
    good_query = queries[0][1]
    good_body = bodies[0]
    path = _path(op)
    out = []

    def add(label: str, query: str, headers: dict[str, str], body: bytes, at: str = path) -> None:
        out.append(Sent(label, op.method, at + (f"?{query}" if query else ""), dict(headers), body))

    if not full:
        add(good_body[0], good_query, good_body[1], good_body[2])
        for label, headers, body in bodies:
            if "deep" in label or "broken" in label or "not utf-8" in label or label.startswith("junk"):
                add(label, queries[-1][1], headers, body)
        return out
    for label, query in queries:
        add(label, query, good_body[1], good_body[2])
    for label, headers, body in bodies[1:]:
        add(label, good_query, headers, body)
    if "{" in op.path:
        for value in ("x", NUL, ODD_UNICODE, "9" * 50, "a" * 2000, "..", "%2F"):
            add(f"path parameter {value[:10]!r}", good_query, good_body[1], good_body[2], at=_path(op, value))
    return out


# ------------------------------------------------------------------------------------------
# Principals and stored state
# ------------------------------------------------------------------------------------------


def make_user_token() -> str:
    """A verified local admin user with every ToS accepted, and a fresh admin session token."""
    from chalicelib.settings import get_settings
    from chalicelib.store.users import User
    from tests.factories import make_user

    person = make_user(admin=True)
    accepted = {str(k): tos.version for k, tos in get_settings().terms_of_services.items()}
    person.user.update(actions=[User.accepted_tos.set(accepted)])
    return person.session(admin=True)


def make_runner(client: Any, user_token: str) -> tuple[str | None, str | None]:
    """A runner token (through admins-create_runner) and a session token (runners-register), where
    those operations exist; otherwise (None, None)."""
    from chalicelib.routes import _http

    ops = {o.operation_id: o for o in _http.OPERATIONS}
    create, register = ops.get("admins-create_runner"), ops.get("runners-register")
    if create is None:
        return None, None
    r = client.http.request(create.method, create.path, headers={"Authorization": f"Bearer {user_token}"}, body=b"")
    if r.status_code != 200:
        return None, None
    runner_token = json.loads(r.body).get("token")
    if register is None or runner_token is None:
        return runner_token, None
    schema, defs = _schema(register.body)
    body = json.dumps(plausible(schema, defs)).encode()
    r = client.http.request(register.method, register.path, body=body,
                            headers={"Authorization": f"Bearer {runner_token}", "Content-Type": "application/json"})
    session = json.loads(r.body).get("session_token") if r.status_code == 200 else None
    return runner_token, session


# Attributes that a request may refresh even when it is rejected: a token's last use (every
# authenticated request) and a runner's lease (every runner request). Keyed by table name suffix.
VOLATILE = {"-tokens": {"last_usage"}, "-runners": {"expires_at"}}
# ids drawn for a request that then fails are simply skipped; throttles count every attempt,
# rejected ones included (that is their purpose)
UNTRACKED_TABLES = ("-counters", "-throttles")


def _volatile(table: str) -> set[str]:
    return next((names for suffix, names in VOLATILE.items() if table.endswith(suffix)), set())


class StateGuard:
    """Watches every AWS write (all boto clients, PynamoDB's too). Before the first write to a
    DynamoDB item or S3 object within a request it reads that item's current image; when the
    request is then rejected (4xx), every touched item must be back to that image. Cheaper and
    more precise than scanning all tables around every request."""

    def __init__(self, monkeypatch: Any) -> None:
        import botocore.client

        self.before: dict[tuple, Any] = {}  # (kind, table/bucket, key) → (client, image)
        self._key_names: dict[str, list[str]] = {}
        original = botocore.client.BaseClient._make_api_call
        self._call = original
        guard = self

        def recording(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            for target in guard._targets(client, operation_name, api_params):
                if target not in guard.before:
                    guard.before[target] = (client, guard._image(client, target))
            return original(client, operation_name, api_params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)

    def reset(self) -> None:
        """Forget writes made outside a request (new users, tokens, runners)."""
        self.before.clear()

    def check(self, sweep: Sweep, op: Any, sent: Sent, response: Any, who: str) -> None:
        touched, self.before = self.before, {}
        if response is None or response.status_code < 400:
            return
        for target, (client, image) in touched.items():
            now = self._image(client, target)
            if now != image:
                sweep.failures.append(
                    f"{op.operation_id} [{who}] {sent.label}: rejected with {response.status_code} but changed "
                    f"{target[0]} {target[1]} {target[2][:200]}: {str(image)[:200]} -> {str(now)[:200]}")

    # -- which items a write call touches ------------------------------------------------------

    def _targets(self, client: Any, operation_name: str, params: dict[str, Any]) -> list[tuple]:
        if operation_name in ("PutItem", "UpdateItem", "DeleteItem"):
            return self._item_target(client, params["TableName"], params.get("Key") or params.get("Item"))
        if operation_name == "TransactWriteItems":
            out = []
            for entry in params.get("TransactItems", []):
                for kind in ("Put", "Update", "Delete"):
                    if kind in entry:
                        part = entry[kind]
                        out += self._item_target(client, part["TableName"], part.get("Key") or part.get("Item"))
            return out
        if operation_name == "BatchWriteItem":
            out = []
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    part = request.get("PutRequest") or request.get("DeleteRequest") or {}
                    out += self._item_target(client, table, part.get("Key") or part.get("Item"))
            return out
        if operation_name in ("PutObject", "DeleteObject", "CopyObject", "CompleteMultipartUpload"):
            return [("s3", params["Bucket"], params["Key"])]
        if operation_name == "DeleteObjects":
            return [("s3", params["Bucket"], o["Key"]) for o in params.get("Delete", {}).get("Objects", [])]
        return []

    def _item_target(self, client: Any, table: str, item: dict[str, Any] | None) -> list[tuple]:
        if table.endswith(UNTRACKED_TABLES) or not item:
            return []
        names = self._key_names.get(table)
        if names is None:
            described = self._call(client, "DescribeTable", {"TableName": table})
            names = self._key_names[table] = [k["AttributeName"] for k in described["Table"]["KeySchema"]]
        key = {n: item[n] for n in names if n in item}
        return [("dynamodb", table, json.dumps(key, sort_keys=True))]

    def _image(self, client: Any, target: tuple) -> Any:
        kind, where, key = target
        if kind == "dynamodb":
            found = self._call(client, "GetItem", {"TableName": where, "Key": json.loads(key), "ConsistentRead": True})
            item = found.get("Item")
            if item is None:
                return None
            skip = _volatile(where)
            return {k: v for k, v in item.items() if k not in skip}
        from botocore.exceptions import ClientError

        try:
            head = self._call(client, "HeadObject", {"Bucket": where, "Key": key})
        except ClientError:
            return None
        return (head.get("ETag"), head.get("ContentLength"))


@pytest.fixture
def guard(monkeypatch):
    return StateGuard(monkeypatch)


# ------------------------------------------------------------------------------------------
# The sweeps
# ------------------------------------------------------------------------------------------


def _operations(gated: bool | None = None) -> list[Any]:
    from chalicelib.routes import _http

    ops = list(_http.OPERATIONS)
    if gated is None:
        return ops
    return [o for o in ops if (o.gate is not None) == gated]


def _report(sweep: Sweep) -> None:
    slowest = sorted(sweep.seconds.items(), key=lambda kv: -kv[1])[:5]
    print(f"{sweep.count} requests; slowest operations:", [(k, round(v, 2)) for k, v in slowest])
    if sweep.slow:
        print("slow operations, sent fewer inputs:", sweep.slow)
    assert not sweep.failures, f"{len(sweep.failures)} problems in {sweep.count} requests:\n" + "\n".join(sweep.failures[:60])


def test_anonymous_routes_survive_malformed_input(app, client, guard):
    sweep = Sweep(client)
    guard.reset()
    for op in _operations(gated=False):
        for sent in requests_for(op, Context(), full=True):
            r = sweep.send(op, sent, who="anon")
            guard.check(sweep, op, sent, r, "anon")
    _report(sweep)


def test_gated_routes_reject_malformed_input_and_credentials_without_a_token(app, client, guard):
    sweep = Sweep(client)
    guard.reset()
    seen_gates = set()
    for op in _operations(gated=True):
        for sent in requests_for(op, Context(), full=False):
            r = sweep.send(op, sent, who="no token")
            guard.check(sweep, op, sent, r, "no token")
            if r is not None and r.status_code < 400:
                sweep.failures.append(f"{op.operation_id} [no token] {sent.label}: answered {r.status_code}")
        if op.gate not in seen_gates:  # the gate is shared code: odd credentials once per gate
            seen_gates.add(op.gate)
            for headers in AUTH_HEADERS:
                sent = Sent(f"credentials {_short(headers)}", op.method, _path(op), dict(headers), b"")
                r = sweep.send(op, sent, who="odd credentials")
                guard.check(sweep, op, sent, r, "odd credentials")
                if r is not None and r.status_code not in (401, 403, 422):
                    sweep.failures.append(f"{op.operation_id} {sent.label}: answered {r.status_code}")
    _report(sweep)


def test_gated_routes_survive_malformed_input_with_a_valid_token(app, client, guard):
    sweep = Sweep(client)
    user_token = make_user_token()
    runner_token, session = make_runner(client, user_token)
    guard.reset()
    for op in _operations(gated=True):
        is_runner = op.gate.startswith("runner")
        if is_runner and runner_token is None:
            continue  # no way to make a runner yet (admins section missing)
        who = "runner" if is_runner else "user"
        ctx = Context(session_token=session)
        token = runner_token if is_runner else user_token
        for sent in requests_for(op, ctx, full=True):
            sent.headers["Authorization"] = f"Bearer {token}"
            started = time.monotonic()
            r = sweep.send(op, sent, who=who)
            guard.check(sweep, op, sent, r, who)
            if r is not None and r.status_code < 400:
                # a success may log out, delete the account or unregister the runner: start afresh
                if is_runner:
                    runner_token, session = make_runner(client, make_user_token())
                    if runner_token is None:
                        break
                    ctx.session_token = session
                    token = runner_token
                else:
                    user_token = token = make_user_token()
                guard.reset()
            if time.monotonic() - started > SLOW_REQUEST_S:
                sweep.slow.append(op.operation_id)
                break
    _report(sweep)


def test_deeply_nested_json_is_422_before_the_gate(api):
    """The one input rejected before authentication (§1.4): broken or pathological JSON."""
    from chalicelib.routes import _http

    json_ops = [o for o in _http.OPERATIONS if o.body_format == "json"]
    if not json_ops:
        pytest.skip("no JSON body route yet")
    op = json_ops[0]
    for depth in (100, 500, 5_000, 100_000, 1_000_000):  # all beyond _http.MAX_JSON_DEPTH
        for raw in (b"[" * depth, _nested(depth, "[", "]"), b'{"a":' * depth + b"1" + b"}" * depth):
            r = api.request(op.method, op.path, body=raw, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (depth, raw[:20])
            detail = json.loads(r.body)["detail"]
            assert detail[0]["type"] == "json_invalid" and detail[0]["loc"][0] == "body"
