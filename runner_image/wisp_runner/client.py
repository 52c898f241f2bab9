"""BackendClient: typed wrappers for /api/runners/* (spec §3.6, §6) plus the Wisp extensions.

Transient failures (connection errors, timeouts, 408, 429, 5xx) are retried with exponential
backoff. HTTP statuses with a protocol meaning become typed exceptions (errors.py) for the loop to
act on; any other 4xx on a job-specific call means that this job cannot be done
(`JobUnavailableError`, with a message for the user), not that the backend is unreachable.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import requests

from . import constants as c
from .errors import (
    BackendError,
    JobAbortingError,
    JobUnavailableError,
    NoJobError,
    NotOnlineError,
    RouteMissingError,
    TransientBackendError,
    UnauthorizedError,
)

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # total tries per call
    base_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.max_delay)
        return min(self.max_delay, self.base_delay * (2 ** attempt)) * random.uniform(0.8, 1.2)


def _transient(status: int) -> bool:
    return status in (408, 429) or status >= 500


# Why a job-specific object could not be had, by HTTP status, in words for the user.
_JOB_PROBLEMS = {
    401: "the server refused access to it",
    403: "the server refused access to it",
    404: "it is missing on the server",
    410: "it is no longer on the server",
    413: "it is too large",
    415: "its type is not supported",
}
# Details that only repeat the status line add nothing to the message.
_GENERIC_DETAILS = {"not found", "gone", "forbidden", "access denied", "accessdenied", "nosuchkey", ""}


def job_problem(what: str, status: int, detail: str = "") -> str:
    """'The audio of this job could not be downloaded (HTTP 404): it is missing on the server'."""
    reason = _JOB_PROBLEMS.get(status, "the server refused to send it")
    if detail.strip().lower() not in _GENERIC_DETAILS:
        reason += f" ({detail.strip()})"
    return f"The {what} of this job could not be downloaded (HTTP {status}): {reason}"


def _detail(resp: requests.Response) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])
        return json.dumps(body)[:300]
    except ValueError:
        return resp.text[:300]


class BackendClient:
    """One runner's connection to the backend. Thread-safe: each thread gets its own HTTP session."""

    def __init__(
        self,
        backend_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.base_url = backend_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._stop = stop or threading.Event()
        self._local = threading.local()
        self.session_token: str | None = None
        self.runner_id: int | None = None
        # Wisp extensions: None = not tried yet, False = backend answered 404.
        self.has_audio_url: bool | None = None
        self.has_result_upload: bool | None = None
        self.has_wait_for_job: bool | None = None

    @property
    def token(self) -> str:
        return self._token

    def use_token(self, token: str) -> None:
        """Switch to another runner token (multi-token start); forgets the session."""
        self._token = token
        self.session_token = None
        self.runner_id = None

    # ------------------------------------------------------------ transport
    def _http(self) -> requests.Session:
        sess = getattr(self._local, "session", None)
        if sess is None:
            sess = requests.Session()
            sess.headers["User-Agent"] = "wisp-runner"
            self._local.session = sess
        return sess

    def _request(
        self,
        method: str,
        route: str,
        *,
        json_body: Any = None,
        with_session: bool = True,
        stream: bool = False,
        attempts: int | None = None,
        optional: bool = False,
        extra_params: dict[str, Any] | None = None,
        timeout: float | None = None,
        job_object: str | None = None,
    ) -> requests.Response:
        """One backend call, retried on transient failures. `job_object` names what a job-specific
        call fetches ("audio"): a 4xx without a protocol meaning then raises JobUnavailableError."""
        params: dict[str, Any] = {c.SESSION_TOKEN_PARAM: self.session_token} if with_session and self.session_token else {}
        params.update(extra_params or {})
        # The token travels per request (not on the shared session) so use_token() reaches every thread.
        headers = {"Authorization": f"Bearer {self._token}"}
        tries = attempts or self.retry.attempts
        last: str = ""
        for attempt in range(tries):
            retry_after = None
            try:
                resp = self._http().request(
                    method, self.base_url + route, params=params or None, json=json_body, headers=headers,
                    timeout=timeout or self.timeout, stream=stream, allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    return resp
                detail = _detail(resp)
                if _transient(resp.status_code):
                    last = f"HTTP {resp.status_code}: {detail}"
                    retry_after = resp.headers.get("Retry-After")
                    resp.close()
                else:
                    resp.close()
                    raise self._error(resp.status_code, detail, route, optional, job_object)
            if attempt + 1 < tries:
                delay = self.retry.delay(attempt, retry_after)
                log.warning("%s %s failed (%s); retrying in %.1f s", method, route, last, delay)
                if self._stop.wait(delay):
                    break
        raise TransientBackendError(0, last or "stopped", route)

    @staticmethod
    def _error(status: int, detail: str, route: str, optional: bool, job_object: str | None = None) -> Exception:
        # An extension is missing on a *routing* 404 or 405 (Wisp's catch-all and FastAPI answer
        # unknown paths with these details); a 405 with another detail is the protocol's "job
        # aborted", a 404 with another detail is about the job.
        if optional and ((status == 404 and detail == "Not Found") or (status == 405 and detail == "Method Not Allowed")):
            return RouteMissingError(status, detail, route)
        if status == 401:
            return UnauthorizedError(status, detail, route)
        if status == 403:
            return NotOnlineError(status, detail, route)
        if status == 400:
            return NoJobError(status, detail, route)
        if status == 405:
            return JobAbortingError(status, detail, route)
        if job_object is not None:
            return JobUnavailableError(job_problem(job_object, status, detail), status=status, route=route)
        return BackendError(status, detail, route)

    @staticmethod
    def _json(resp: requests.Response) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise BackendError(resp.status_code, f"expected JSON, got {resp.headers.get('Content-Type')}", resp.url) from exc

    # ------------------------------------------------------------ protocol
    def register(self, *, name: str, version: str, git_hash: str, source_code_url: str, priority: int) -> int:
        """POST register; stores the session token. Raises NotOnlineError(403) if already online."""
        body = {"name": name, "version": version, "git_hash": git_hash,
                "source_code_url": source_code_url, "priority": priority}
        data = self._json(self._request("POST", c.ROUTE_REGISTER, json_body=body, with_session=False))
        self.session_token = str(data["session_token"])
        self.runner_id = int(data["id"])
        return self.runner_id

    def unregister(self, *, attempts: int | None = None) -> None:
        # The stock runner sends the session token here too; the backend ignores it.
        self._request("POST", c.ROUTE_UNREGISTER, attempts=attempts)
        self.session_token = None

    def heartbeat(self, progress: float) -> dict[str, Any]:
        # One try: the heartbeat thread's next tick is the retry.
        resp = self._request("POST", c.ROUTE_HEARTBEAT, json_body={"progress": round(float(progress), 2)}, attempts=1)
        return dict(self._json(resp))

    def wait_for_job(self, timeout: float) -> dict[str, Any]:
        """Wisp long-poll: a heartbeat that returns as soon as a job is assigned (≤ `timeout` s).

        Raises RouteMissingError (and remembers it) when the backend does not offer it."""
        try:
            resp = self._request(
                "POST", c.ROUTE_WISP_WAIT_FOR_JOB, attempts=1, optional=True,
                extra_params={"timeout": f"{timeout:g}"}, timeout=timeout + self.timeout,
            )
        except RouteMissingError:
            if self.has_wait_for_job is not False:
                log.info("backend has no %s; idle runners send plain heartbeats", c.ROUTE_WISP_WAIT_FOR_JOB)
            self.has_wait_for_job = False
            raise
        self.has_wait_for_job = True
        return dict(self._json(resp))

    def retrieve_job_info(self) -> dict[str, Any]:
        return dict(self._json(self._request("GET", c.ROUTE_JOB_INFO, job_object="information")))

    def download_audio(self, dest: Path, *, discard: bool = False) -> str:
        """Fetch the job's audio into `dest` (also marks the job as in process on the backend).

        With `discard`, the stream is closed unread: used when the job is failed right away,
        since submit_job_result needs the job to be in process first.
        Returns the content type. Raises JobUnavailableError when this job's audio cannot be had
        (4xx, wrong content type), TransientBackendError when the backend or storage is unreachable.
        """
        if self.has_audio_url is not False and not discard:
            try:
                resp = self._request("POST", c.ROUTE_WISP_AUDIO_URL, optional=self.has_audio_url is None,
                                     job_object="audio")
                url = str(self._json(resp)["url"])
                self.has_audio_url = True
                return self._download_presigned(url, dest)
            except RouteMissingError:
                log.info("backend has no %s; using %s", c.ROUTE_WISP_AUDIO_URL, c.ROUTE_JOB_AUDIO)
                self.has_audio_url = False
        resp = self._request("POST", c.ROUTE_JOB_AUDIO, stream=True, job_object="audio")
        with resp:
            ctype = resp.headers.get("Content-Type", "")
            if ctype.split("/")[0].strip().lower() not in ("audio", "video"):
                raise JobUnavailableError(
                    f"The audio of this job could not be used: the server sent it with content type '{ctype}', "
                    "not audio or video", status=resp.status_code, route=c.ROUTE_JOB_AUDIO)
            if discard:
                return ctype
            self._save(resp, dest, c.ROUTE_JOB_AUDIO)
        return ctype

    @staticmethod
    def _save(resp: requests.Response, dest: Path, route: str) -> None:
        try:
            with open(dest, "wb") as out:
                for chunk in resp.iter_content(CHUNK):
                    out.write(chunk)
        except requests.RequestException as exc:  # the connection broke mid-stream
            raise TransientBackendError(0, f"audio download broke off: {exc}", route) from exc

    def _download_presigned(self, url: str, dest: Path) -> str:
        last = ""
        route = "pre-signed audio URL"
        for attempt in range(self.retry.attempts):
            try:
                # Plain GET: the pre-signed URL carries its own auth; a Bearer header would clash.
                with requests.get(url, stream=True, timeout=self.timeout) as resp:
                    if resp.status_code < 300:
                        self._save(resp, dest, route)
                        return resp.headers.get("Content-Type", "")
                    last = f"HTTP {resp.status_code}"
                    if not _transient(resp.status_code):  # 403 expired/denied, 404 NoSuchKey, ...
                        raise JobUnavailableError(job_problem("audio", resp.status_code, _s3_code(resp)),
                                                  status=resp.status_code, route=route)
            except (requests.ConnectionError, requests.Timeout, TransientBackendError) as exc:
                last = str(exc)
            if attempt + 1 == self.retry.attempts or self._stop.wait(self.retry.delay(attempt)):
                break
        raise TransientBackendError(0, f"audio download failed: {last}", route)

    def submit_result(
        self, *, transcript: dict[str, Any] | None = None, error_msg: str | None = None,
        inline_limit: int = c.DEFAULT_INLINE_RESULT_LIMIT,
    ) -> None:
        body = {"error_msg": error_msg, "transcript": transcript}
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if len(payload) > inline_limit and self.has_result_upload is not False:
            try:
                self._submit_uploaded(payload)
                return
            except RouteMissingError:
                log.info("backend has no %s; submitting inline", c.ROUTE_WISP_RESULT_UPLOAD)
                self.has_result_upload = False
        try:
            self._request("POST", c.ROUTE_SUBMIT_RESULT, json_body=body)
        except BackendError as exc:
            if exc.status == 413 and transcript is not None:
                self._request("POST", c.ROUTE_SUBMIT_RESULT, json_body={
                    "error_msg": "the transcript is too large for the backend to accept", "transcript": None})
                return
            raise

    def _submit_uploaded(self, payload: bytes) -> None:
        target = self._json(self._request("POST", c.ROUTE_WISP_RESULT_UPLOAD, optional=True))
        self.has_result_upload = True
        # Wisp answers {"url", "fields", "key"}; S3 needs every field (key included) before the file.
        url, fields = str(target["url"]), {str(k): str(v) for k, v in (target.get("fields") or {}).items()}
        key = str(target.get("key") or fields.get("key") or "")
        if not key:
            raise BackendError(200, "result_upload answered without a key", c.ROUTE_WISP_RESULT_UPLOAD)
        fields.setdefault("key", key)
        last = ""
        for attempt in range(self.retry.attempts):
            try:
                resp = requests.post(url, data=fields, files={"file": ("result.json", payload, "application/json")},
                                     timeout=max(self.timeout, 120))
                if resp.status_code < 300:
                    break
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = str(exc)
            if attempt + 1 == self.retry.attempts or self._stop.wait(self.retry.delay(attempt)):
                raise TransientBackendError(0, f"result upload failed: {last}", "presigned result upload")
        self._request("POST", c.ROUTE_WISP_SUBMIT_UPLOADED, json_body={"key": key})


def _s3_code(resp: requests.Response) -> str:
    """The <Code> of an S3 error body (e.g. NoSuchKey, AccessDenied), or ''."""
    try:
        text = resp.text[:2000]
    except requests.RequestException:
        return ""
    start, end = text.find("<Code>"), text.find("</Code>")
    return text[start + 6:end] if 0 <= start < end else ""


def parse_token_secret(value: str, secret_name: str = "secret") -> list[str]:
    """Tokens in a secret string: JSON {"tokens": [...]}, JSON {"token": ...}, a JSON list, or a plain token."""
    value = value.strip()
    if value.startswith(("{", "[")):
        data = json.loads(value)
        if isinstance(data, dict):
            for key in ("tokens", "token", "runner_token", "RUNNER_TOKEN"):
                if key in data:
                    data = data[key]
                    break
            else:
                raise ValueError(f"{secret_name} is JSON without a 'tokens' or 'token' key")
        items = data if isinstance(data, list) else [data]
        tokens = [str(t).strip() for t in items if str(t).strip()]
    else:
        tokens = [value] if value else []
    if not tokens:
        raise ValueError(f"{secret_name} holds no runner token")
    return list(dict.fromkeys(tokens))  # de-duplicated, order kept


def fetch_tokens_from_secret(secret_name: str, *, client_factory: Callable[[], Any] | None = None) -> list[str]:
    """Read runner tokens from AWS Secrets Manager (see parse_token_secret for the accepted shapes)."""
    if client_factory is None:
        import boto3  # lazy: only runners configured with a secret need boto3 at all

        def client_factory() -> Any:
            return boto3.client("secretsmanager")

    value = client_factory().get_secret_value(SecretId=secret_name)["SecretString"]
    return parse_token_secret(value, f"secret {secret_name}")


def fetch_token_from_secret(secret_name: str, *, client_factory: Callable[[], Any] | None = None) -> str:
    """The first token of the secret (kept for callers that handle a single token)."""
    return fetch_tokens_from_secret(secret_name, client_factory=client_factory)[0]
