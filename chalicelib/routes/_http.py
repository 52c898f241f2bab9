"""The one place that touches Chalice's request shape.

``Router.route`` declares an operation once: its path, method, gate, query model, body model and
response type. From that single declaration we get

* the Chalice view (gate first, then validation, then the handler; spec §1.4 order),
* Project-W's error and validation shapes (§1.5) and exact ``application/json`` responses (§1.2),
* the OpenAPI document (``routes/docs.py`` reads ``OPERATIONS``).
"""
from __future__ import annotations

import functools
import json
import logging
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

import pydantic_core
from chalice import Blueprint, Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from .. import errors

log = logging.getLogger("wisp.http")

JSON = "application/json"
BodyFormat = Literal["json", "form", "multipart", "binary"]

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


@dataclass
class Operation:
    """One API operation as declared by a route; the source of the OpenAPI document."""

    tag: str
    name: str  # upstream function name; operationId is "<tag>-<name>"
    method: str
    path: str  # full path, e.g. /api/users/info
    gate: str | None  # the gate's name (spec §1.4), for the OpenAPI document
    query: type[BaseModel] | None
    body: Any
    body_format: BodyFormat | None
    response: Any
    response_media: str
    errors: dict[int, str]
    summary: str
    description: str
    extension: bool  # a Wisp extension, not part of the Project-W API
    guard: Gate | None = None  # the gate itself: authenticates a request

    @property
    def operation_id(self) -> str:
        return f"{self.tag}-{self.name}"


OPERATIONS: list[Operation] = []


class Gate(Protocol):
    """An access gate: ``auth.UserGate`` or ``runner_gate.RunnerGate``. ``check`` gets the request
    and its decoded JSON body (None if none), and answers with the caller or raises the gate's error."""

    @property
    def name(self) -> str: ...

    def check(self, request: Any, body: Any) -> Any: ...


def gate_named(name: str) -> Gate:
    """The gate a route names by a string (``"user+V"``, ``"runner+S"``, ...)."""
    from ..auth import UserGate
    from ..services.runner_gate import RunnerGate

    if name in ("runner", "runner+S"):
        return RunnerGate(with_session=name == "runner+S")
    return UserGate(name)


@dataclass
class Call:
    """What a handler gets: the parsed request and the authenticated caller."""

    request: Any  # chalice.app.Request
    principal: Any = None  # auth.Principal / auth.RunnerPrincipal
    query: Any = None
    body: Any = None
    set_cookie: str | None = None  # filled by the gate on session rotation
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.request.headers.get(name, default)


class Router:
    """A Chalice blueprint for one Project-W router (tag) under one URL prefix."""

    def __init__(self, import_name: str, *, prefix: str, tag: str,
                 precondition: Callable[[], None] | None = None) -> None:
        self.blueprint = Blueprint(import_name)
        self.prefix = prefix
        self.tag = tag
        self.precondition = precondition  # checked before anything else, e.g. "section enabled"

    def route(
        self,
        path: str,
        method: str,
        *,
        gate: str | Gate | None,
        response: Any,
        query: type[BaseModel] | None = None,
        body: Any = None,
        body_format: BodyFormat | None = None,
        response_media: str = JSON,
        errors: dict[int, str] | None = None,
        extension: bool = False,
        name: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            doc = (handler.__doc__ or "").strip()
            summary, _, description = doc.partition("\n")
            fmt = body_format or ("json" if body is not None else None)
            guard = gate_named(gate) if isinstance(gate, str) else gate
            op = Operation(
                tag=self.tag,
                name=name or handler.__name__,
                method=method,
                path=self.prefix + path,
                gate=guard.name if guard is not None else None,
                query=query,
                body=body,
                body_format=fmt,
                response=response,
                response_media=response_media,
                errors=dict(errors or {}),
                summary=summary.strip(),
                description=_dedent(description),
                extension=extension,
                guard=guard,
            )
            OPERATIONS.append(op)
            view = _make_view(self.blueprint, op, handler, self.precondition)
            self.blueprint.route(path, methods=[method], content_types=["*/*"], name=f"{self.tag}_{op.name}")(view)
            return handler

        return decorate


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip()


# ------------------------------------------------------------------------------------------
# Views
# ------------------------------------------------------------------------------------------


def _make_view(blueprint: Blueprint, op: Operation, handler: Callable[..., Any],
               precondition: Callable[[], None] | None = None) -> Callable[..., Response]:
    query_lists = _list_fields(op.query) if op.query is not None else set()
    validates_body = op.body is not None and op.body_format in ("json", "form")

    def view(**uri_params: str) -> Response:
        call = Call(request=blueprint.current_request)
        try:
            return _with_cookie(_answer(call, uri_params), call)
        except errors.AppError as exc:
            return _with_cookie(error_response(exc), call)
        except Exception as exc:  # noqa: BLE001 - last line of defence: log, answer in our shape
            return _with_cookie(_unexpected(exc, op), call)

    def _answer(call: Call, uri_params: dict[str, str]) -> Response:
        if precondition is not None:
            precondition()
        if call.request.method not in SAFE_METHODS:
            refuse_cross_site(call.request.headers)
        raw_json: Any = _MISSING
        if op.body_format == "json":
            raw_json = _json_body(call.request)
        if op.guard is not None:
            admitted = op.guard.check(call.request, None if raw_json is _MISSING else raw_json)
            call.principal, call.set_cookie = admitted.principal, admitted.set_cookie
        problems: list[dict[str, Any]] = []
        if op.query is not None:
            call.query = _validate_query(op.query, call.request.query_params, query_lists, problems)
        if validates_body:
            data = raw_json if op.body_format == "json" else _decode_form(call.request)
            call.body = _validate_body(_adapter(op.body), data, problems)
        if problems:
            raise errors.ValidationFailed(problems)
        result = handler(call, **uri_params) if uri_params else handler(call)
        if isinstance(result, Response):
            return result
        return json_response(result, headers=call.headers)

    view.__name__ = f"{op.tag}_{op.name}".replace("-", "_")
    return view


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# What AWS answers when it is busy or could not be reached: the caller may simply try again (503).
_AWS_BUSY = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
                       "ServiceUnavailable", "SlowDown", "TransactionConflictException", "InternalServerError",
                       "InternalError", "RequestTimeout"})


def _aws_unreachable(exc: BaseException) -> str | None:
    """Why AWS could not answer (a transport error or a "busy" code), or None for anything else.

    Never raises, whatever ``exc`` carries: botocore's transport errors inherit a ``response``
    attribute that is None."""
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - botocore is always there on Lambda
        return None
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return type(exc).__name__
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        if code in _AWS_BUSY:
            return str(code)
    return None


def _unexpected(exc: Exception, op: Operation) -> Response:
    try:
        reason = _aws_unreachable(exc)
        if reason is not None:
            log.warning("%s %s: AWS is busy or unreachable (%s)", op.method, op.path, reason)
            return error_response(errors.ServiceUnavailable())
        log.exception("%s %s failed", op.method, op.path)
    except Exception:  # noqa: BLE001 - logging must not turn an error into Chalice's own 500
        pass
    return error_response(errors.AppError())


def _with_cookie(response: Response, call: Call) -> Response:
    if call.set_cookie:
        response.headers["Set-Cookie"] = call.set_cookie
    return response


# ------------------------------------------------------------------------------------------
# Responses
# ------------------------------------------------------------------------------------------


def json_response(value: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with ``Content-Type: application/json`` exactly (no charset, §1.2)."""
    body = pydantic_core.to_json(value).decode("utf-8")
    out: dict[str, str | list[str]] = {"Content-Type": JSON}
    if headers:
        out.update(headers)
    return Response(body=body, status_code=status, headers=out)


def error_response(exc: errors.AppError) -> Response:
    return json_response({"detail": exc.detail}, status=int(exc.status_code), headers=exc.headers)


# ------------------------------------------------------------------------------------------
# Request parsing
# ------------------------------------------------------------------------------------------

_MISSING: Any = object()


@functools.lru_cache(maxsize=None)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    # built on first use, not at import: cold starts only pay for the routes they serve
    return TypeAdapter(tp)


def _list_fields(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, info in model.model_fields.items():
        tp = info.annotation
        if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
        if typing.get_origin(tp) is list:
            names.add(info.alias or name)
    return names


def _jsonable_ctx(ctx: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in ctx.items():
        try:
            json.dumps(value)
            out[key] = value
        except (TypeError, ValueError):
            out[key] = {}
    return out


def _convert(error: ValidationError, prefix: list[Any], *, missing_input: Any = _MISSING) -> list[dict[str, Any]]:
    converted = []
    for err in error.errors(include_url=False):
        item: dict[str, Any] = {
            "type": err["type"],
            "loc": prefix + list(err["loc"]),
            "msg": err["msg"],
            "input": err.get("input"),
        }
        if err["type"] == "missing" and missing_input is not _MISSING:
            item["input"] = missing_input
        if "ctx" in err:
            item["ctx"] = _jsonable_ctx(err["ctx"])
        converted.append(item)
    return converted


def _validate_query(model: type[BaseModel], params: Any, lists: set[str], problems: list[dict[str, Any]]) -> Any:
    data: dict[str, Any] = {}
    if params:
        for key in params:
            data[key] = params.getlist(key) if key in lists else params.getlist(key)[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_convert(exc, ["query"], missing_input=None))
        return None


def _validate_body(adapter: TypeAdapter[Any], data: Any, problems: list[dict[str, Any]]) -> Any:
    if data is _MISSING:
        problems.append({"type": "missing", "loc": ["body"], "msg": "Field required", "input": None})
        return None
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        problems.extend(_convert(exc, ["body"]))
        return None


def _is_json_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/<anything>+json``; a request without a type counts as
    JSON, as in upstream's framework (scripts often send none; browsers always send one)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _json_body(request: Any) -> Any:
    """The JSON body of a route that takes JSON.

    A body declared as anything but JSON (``text/plain``, a form) is not parsed: it reaches
    validation as text and fails there with 422, as in upstream's framework. So an HTML form on
    another site, which can send ``text/plain`` without a CORS preflight, cannot drive a JSON
    route. A syntactically broken JSON body is rejected before authentication (§1.4)."""
    if _is_json_type(request.headers.get("content-type")):
        return _decode_json(request.raw_body)
    raw = request.raw_body or b""
    if not raw:
        return _MISSING
    return raw.decode("utf-8", errors="replace")


def refuse_cross_site(headers: Any) -> None:
    """403 for a state-changing request a browser sent from another site.

    Browsers name the page's origin in ``Origin`` on every POST/PUT/PATCH/DELETE, and say in
    ``Sec-Fetch-Site`` how it relates to the target. Wisp's own pages and Project-W's frontend
    (served from ``client_url``) are trusted; runners and scripts send neither header. This covers
    what SameSite=lax leaves open: a sibling subdomain, and form routes such as login (login CSRF)."""
    origin = (headers.get("origin") or "").strip()
    fetch_site = (headers.get("sec-fetch-site") or "").strip().lower()
    if not origin or origin == "null":
        if fetch_site == "cross-site" or origin == "null":
            raise errors.Forbidden("Cross-site requests are not accepted")
        return
    if origin.rstrip("/").lower() not in trusted_origins(headers):
        raise errors.Forbidden("Cross-site requests are not accepted")


def trusted_origins(headers: Any) -> set[str]:
    """The frontend's origin (``client_url``) and the API's own (its ``Host``)."""
    from urllib.parse import urlsplit

    from ..settings import get_settings

    found = set()
    client = urlsplit(get_settings().client_url)
    found.add(f"{client.scheme}://{client.netloc}".lower())
    host = (headers.get("host") or "").strip().lower()
    if host:
        proto = (headers.get("x-forwarded-proto") or "").split(",")[0].strip().lower()
        for scheme in ([proto] if proto in ("http", "https") else ["http", "https"]):
            found.add(f"{scheme}://{host}")
    return found


def _decode_json(raw: bytes) -> Any:
    if not raw or not raw.strip():
        return _MISSING
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.ValidationFailed(
            [{"type": "json_invalid", "loc": ["body", exc.start], "msg": "JSON decode error", "input": {},
              "ctx": {"error": "invalid UTF-8"}}]
        ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.ValidationFailed(
            [{"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error", "input": {},
              "ctx": {"error": exc.msg}}]
        ) from None
    except RecursionError:
        raise _json_error("nesting too deep") from None
    if isinstance(value, (dict, list)):
        problem = _json_problem(value, MAX_JSON_DEPTH)
        if problem:
            raise _json_error(problem)
    elif isinstance(value, str) and not _encodable(value):
        raise _json_error("invalid unicode escape (lone surrogate)")
    return value


# No API body nests anywhere near this deep. Deeper documents would parse, but echoing them back in a
# 422 (or storing them) fails: pydantic serialises at most ~255 levels, DynamoDB stores 32.
MAX_JSON_DEPTH = 64


def _json_error(reason: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(
        [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {},
          "ctx": {"error": reason}}]
    )


def _encodable(text: str) -> bool:
    """False for strings with lone surrogates (``"\\ud800"`` is valid JSON but not valid UTF-8)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_problem(value: Any, limit: int) -> str | None:
    """Why a parsed JSON document cannot be processed: lists/objects nested deeper than ``limit``,
    or strings that cannot be encoded again (every later step, from the 422 echo to DynamoDB,
    would fail on them). Iterative, so no recursion limit applies."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return "nesting too deep"
        if isinstance(node, dict):
            if not all(_encodable(key) for key in node):
                return "invalid unicode escape (lone surrogate)"
            children = node.values()
        else:
            children = node
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and not _encodable(child):
                return "invalid unicode escape (lone surrogate)"
    return None


def _decode_form(request: Any) -> Any:
    """An ``application/x-www-form-urlencoded`` (or multipart, without files) body as a dict.

    A blank field counts as not sent, as in upstream's FastAPI forms: ``grant_type=`` is no grant
    type (Swagger UI's "Send empty value" sends that), and a blank ``username`` is a missing one.
    """
    from urllib.parse import parse_qsl

    raw = request.raw_body or b""
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        from ..multipart_form import parse_multipart

        fields, _files = parse_multipart(raw, content_type)
        return {k: v for k, v in fields.items() if v != ""}
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {k: v for k, v in pairs if v != ""}


def text_response(body: str | bytes, *, content_type: str, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    out: dict[str, str | list[str]] = {"Content-Type": content_type}
    if headers:
        out.update(headers)
    # every content type is binary (binary_types.py), so Chalice needs bytes for non-JSON bodies
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Response(body=data, status_code=status, headers=out)
