"""Factories and helpers for the job and runner tests (users, runners, uploads, transcripts)."""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any


from chalicelib.services import admin as runner_admin
from chalicelib.store.users import User
from tests import factories

TRANSCRIPT = {
    "as_txt": "Space, the final frontier.\n",
    "as_srt": "1\n00:00:06,089 --> 00:00:14,663\nSpace, the final frontier.\n\n",
    "as_tsv": "start\tend\ttext\n6089\t14663\tSpace, the final frontier.\n",
    "as_vtt": "WEBVTT\n\n00:06.089 --> 00:14.663\nSpace, the final frontier.\n\n",
    "as_json": {"language": "en", "segments": [{"start": 6.089, "end": 14.663, "text": "Space, the final frontier."}]},
}
RUNNER_INFO = {"name": "test-runner", "version": "1.0.0", "git_hash": "abc123", "source_code_url": "https://example.org/r",
               "priority": 100}


@dataclass
class Person:
    user: User
    token: str  # session token secret (admin if asked for)
    api_token: str


def tiny_wav(frames: int = 160) -> bytes:
    """A real, tiny WAV file (16 kHz mono, 16-bit silence), made with the stdlib: what uploads
    send when a test needs audio the server's content check accepts."""
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x00" * frames)
    return out.getvalue()


WAV = tiny_wav()


def make_user(*, verified: bool = True, admin: bool = False, email: str | None = None) -> Person:
    """A local user (tests/factories.make_user) with a session token and an API token."""
    person = factories.make_user(email, verified=verified, admin=admin)
    return Person(person.user, person.session(admin=admin), person.api_token())


def make_runner() -> tuple[int, str]:
    return runner_admin.create_runner()


def multipart(file_bytes: bytes = b"RIFF....WAVEfmt fake audio", *, filename: str | None = "talk.wav",
              content_type: str | None = "audio/wav", field: str = "audio_file") -> tuple[bytes, str]:
    boundary = "wispboundary" + uuid.uuid4().hex
    disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    data = head.encode() + b"\r\n" + file_bytes + f"\r\n--{boundary}--\r\n".encode()
    return data, f"multipart/form-data; boundary={boundary}"


def submit(api: Any, token: str, *, data: bytes = WAV, filename: str = "talk.wav",
           content_type: str = "audio/wav", settings_id: int | None = None) -> Any:
    body, ctype = multipart(data, filename=filename, content_type=content_type)
    query = {"job_settings_id": settings_id} if settings_id is not None else None
    return api.post("/api/jobs/submit_job", body=body, headers={"Content-Type": ctype}, token=token, query=query)


class RunnerClient:
    """A runner speaking the protocol through the test client (same calls as the stock runner)."""

    def __init__(self, api: Any, token: str) -> None:
        self.api = api
        self.token = token
        self.session: str | None = None
        self.id: int | None = None

    def register(self, **overrides: Any) -> Any:
        r = self.api.post("/api/runners/register", json={**RUNNER_INFO, **overrides}, token=self.token)
        if r.status_code == 200:
            data = json.loads(r.body)
            self.session, self.id = data["session_token"], data["id"]
        return r

    def call(self, method: str, route: str, **kw: Any) -> Any:
        query = dict(kw.pop("query", {}) or {})
        query.setdefault("session_token", self.session)
        return self.api.request(method, route, token=self.token, query=query, **kw)

    def heartbeat(self, progress: float = 0.0) -> Any:
        return self.call("POST", "/api/runners/heartbeat", json={"progress": progress})

    def job_info(self) -> Any:
        return self.call("GET", "/api/runners/retrieve_job_info")

    def audio(self) -> Any:
        return self.call("POST", "/api/runners/retrieve_job_audio")

    def result(self, *, transcript: dict | None = None, error_msg: str | None = None) -> Any:
        return self.call("POST", "/api/runners/submit_job_result",
                         json={"transcript": transcript, "error_msg": error_msg})

    def unregister(self) -> Any:
        return self.api.post("/api/runners/unregister", token=self.token, query={"session_token": self.session})


def serialise_moto_dynamodb() -> Any:
    """Make moto's DynamoDB behave like DynamoDB under concurrency, and fast enough for it.

    moto checks conditions and writes without a lock, so concurrent test threads could both pass
    a condition; here every DynamoDB request runs under one lock (DynamoDB guarantees a request is
    atomic). moto also deep-copies each table a transaction touches (its rollback copy), which
    makes transactions O(table size); under the lock we can check every condition first and only
    then apply the writes, so no rollback copy is needed. Returns an undo function."""
    import copy as real_copy

    from moto.dynamodb import models as dynamo_models
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original_call = DynamoHandler.call_action
    original_transact = dynamo_models.DynamoDBBackend.transact_write_items

    class _NoTableCopies:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(value: Any, *args: Any) -> Any:
            return value if isinstance(value, Table) else real_copy.deepcopy(value, *args)

    def call_action(self: Any) -> Any:
        with lock:
            return original_call(self)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        reasons: list[tuple[str | None, str | None, Any]] = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            condition = op.get("ConditionExpression")
            ok = condition is None or get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues"),
            ).expr(self.get_item(op["TableName"], key))
            reasons.append((None, None, None) if ok else ("ConditionalCheckFailed", "The conditional request failed", None))
        if any(code is not None for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)
        dynamo_models.copy = _NoTableCopies()  # every condition holds: no rollback copy needed
        try:
            original_transact(self, transact_items)
        finally:
            dynamo_models.copy = real_copy

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    dynamo_models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    def undo() -> None:
        DynamoHandler.call_action = original_call  # type: ignore[method-assign]
        dynamo_models.DynamoDBBackend.transact_write_items = original_transact  # type: ignore[method-assign]

    return undo


# --------------------------------------------------------------------------------------------
# A real HTTP stack in this process: moto's server + Chalice's local dev server, both threaded
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _thread_local_current_request(app: Any) -> None:
    """Chalice keeps the request on the app object; a threaded dev server needs it per thread
    (on Lambda one process serves one request at a time)."""
    cls = type(app)
    if isinstance(cls.__dict__.get("current_request"), property):
        return
    local = threading.local()
    app.__dict__.pop("current_request", None)
    cls.current_request = property(lambda self: getattr(local, "request", None),
                                   lambda self, value: setattr(local, "request", value))


def _wisp_models() -> list[Any]:
    """Every PynamoDB model of Wisp's tables: those in ALL_MODELS and any second view of one of
    their tables (e.g. the fleet row of the counters table)."""
    from pynamodb.models import Model

    from chalicelib.store import ALL_MODELS
    from chalicelib.store.base import TableMeta

    found: list[Any] = list(ALL_MODELS)
    pending = list(Model.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if issubclass(getattr(model, "Meta", object), TableMeta) and model not in found:
            found.append(model)
    return found


class HttpStack:
    """``with HttpStack() as stack:`` → ``stack.url`` serves the Wisp app over real HTTP, backed by a
    moto server (``stack.aws_url``) that the app reaches through ``WISP_AWS_ENDPOINT_URL``."""

    def __init__(self) -> None:
        self.url = ""
        self.aws_url = ""
        self._undo: list[Any] = []

    def __enter__(self) -> "HttpStack":
        import os

        from chalice.config import Config
        from chalice.local import create_local_server
        from moto.server import ThreadedMotoServer

        from chalicelib import aws, bootstrap
        from chalicelib.settings import get_settings
        from wisp_local import devserver

        port = free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        self.aws_url = f"http://127.0.0.1:{port}"
        self._undo.append(serialise_moto_dynamodb())
        previous = os.environ.get("WISP_AWS_ENDPOINT_URL")
        os.environ["WISP_AWS_ENDPOINT_URL"] = self.aws_url
        hosts = {model: model.Meta.host for model in _wisp_models()}
        for model in hosts:  # PynamoDB read the endpoint when the models were created
            model.Meta.host = self.aws_url
            model._connection = None

        def restore() -> None:
            if previous is None:
                os.environ.pop("WISP_AWS_ENDPOINT_URL", None)
            else:
                os.environ["WISP_AWS_ENDPOINT_URL"] = previous
            for model, host in hosts.items():
                model.Meta.host = host
                model._connection = None
            aws.reset_clients()
            get_settings.cache_clear()

        self._undo.append(restore)
        aws.reset_clients()
        get_settings.cache_clear()
        bootstrap.ensure_all(get_settings())
        devserver.install()
        from app import app

        _thread_local_current_request(app)
        web_port = free_port()
        # create_local_server swaps the app's class for a local subclass and never swaps it back;
        # restore it on exit, or a second stack in the same session builds an inheritance cycle
        self._app, self._app_class = app, type(app)
        self._server = create_local_server(app, Config(), "127.0.0.1", web_port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{web_port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.server.shutdown()
        self._server.server.server_close()
        self._app.__class__ = self._app_class
        self._moto.stop()
        for undo in reversed(self._undo):
            undo()


class HttpRunner:
    """A runner over real HTTP, with the stock runner's calls and checks (exact JSON type)."""

    def __init__(self, base: str, token: str) -> None:
        import requests

        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.base = base + "/api/runners"
        self.wisp = base + "/api/wisp/runners"
        self.session = ""

    def _json(self, response: Any) -> Any:
        assert response.headers["Content-Type"] == "application/json", response.headers
        return response.json()

    def register(self, **overrides: Any) -> dict:
        r = self.http.post(f"{self.base}/register", json={**RUNNER_INFO, **overrides}, timeout=30)
        assert r.status_code == 200, r.text
        data = self._json(r)
        self.session = data["session_token"]
        return data

    def heartbeat(self, progress: float = 0.0) -> dict:
        r = self.http.post(f"{self.base}/heartbeat", params={"session_token": self.session},
                           json={"progress": progress}, timeout=30)
        assert r.status_code == 200, r.text
        return self._json(r)

    def wait_for_job(self, timeout: float) -> dict:
        r = self.http.post(f"{self.wisp}/wait_for_job", params={"session_token": self.session, "timeout": timeout},
                           timeout=timeout + 30)
        assert r.status_code == 200, r.text
        return self._json(r)

    def job_info(self) -> dict:
        r = self.http.get(f"{self.base}/retrieve_job_info", params={"session_token": self.session}, timeout=30)
        assert r.status_code == 200, r.text
        return self._json(r)

    def audio(self) -> tuple[bytes, str]:
        r = self.http.post(f"{self.base}/retrieve_job_audio", params={"session_token": self.session}, timeout=30,
                           allow_redirects=False)
        assert r.status_code == 200, r.text
        return r.content, r.headers["Content-Type"]

    def result(self, *, transcript: dict | None = None, error_msg: str | None = None) -> Any:
        r = self.http.post(f"{self.base}/submit_job_result", params={"session_token": self.session},
                           json={"transcript": transcript, "error_msg": error_msg}, timeout=60)
        return r

    def unregister(self) -> None:
        self.http.post(f"{self.base}/unregister", params={"session_token": self.session}, timeout=30)
