"""Local AWS for ``make run``: moto's server behind one lock, its state kept in a directory.

moto's backends are not safe under concurrent requests (a cancelled transaction puts back copies of
whole tables, iterations meet dicts that other threads change), so every request to the emulator,
read or write, runs alone: :class:`SerializedMoto` is the WSGI app the server threads call, and it
holds one lock from reading the request to having the whole response. Wisp's own correctness does
not depend on this; it only makes the emulator behave like a service.

State on disk (``<state dir>/aws/``), written by :class:`Persistence`:

``snapshot.json``
    The emulator's state in AWS API terms: each table's definition and items, each bucket's
    settings, objects and unfinished multipart uploads, SES identities and sent mail. Written
    whole (temporary file, fsync, rename), so it is either the old or the new one.
``blobs/<sha256>``
    The bytes of objects and upload parts, one file per distinct content, named by its hash.
``journal-<generation>.jsonl``
    Every request that changed something since the snapshot of that generation, one JSON line
    each, appended under the lock after moto answered and before the client gets the answer.

A start loads the snapshot, replays the journals after it, then folds everything into a new
snapshot. While running, the journal is folded into a new snapshot when it reaches
``COMPACT_ENTRIES`` requests or ``COMPACT_BYTES``, or ``COMPACT_SECONDS`` after its first entry,
and once more at a clean stop. A start therefore replays at most a few minutes of requests,
however long the stack has run, and the snapshot grows with the data, not with the history.

Recordings of earlier versions (moto's recorder, ``moto-recording.jsonl``) are replayed once and
kept under a new name.
"""
from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import html
import io
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs, quote, unquote, urlsplit

FORMAT = "wisp-local-aws/1"
# A start replays a journal entry in about 3.5 ms (moto's UpdateItem with its response, 2-core
# machine), so a journal of at most 500 entries adds under 2 s to a start.
COMPACT_ENTRIES = 500  # journal entries that trigger a new snapshot
COMPACT_BYTES = 64 * 1024 * 1024  # journal size that triggers a new snapshot
COMPACT_SECONDS = 300.0  # age of the oldest journal entry that triggers a new snapshot
RECOVER_VARIABLE = "WISP_STATE_RECOVER"

# Requests that change nothing are left out of the journal; most of Wisp's AWS traffic is reads.
_DYNAMODB_READS = frozenset((
    "GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan", "DescribeTable", "DescribeTimeToLive",
    "ListTables", "ListTagsOfResource", "DescribeContinuousBackups", "DescribeEndpoints", "DescribeLimits",
))
# object headers that a PutObject sets again (everything else S3 derives itself)
_OBJECT_HEADERS = frozenset((
    "content-type", "content-disposition", "content-encoding", "content-language", "cache-control", "expires",
    "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-bucket-key-enabled", "x-amz-storage-class", "x-amz-website-redirect-location",
))
_NOT_RESENT = frozenset(("content-md5", "x-amz-content-sha256", "content-length"))


class StateError(Exception):
    """The saved state cannot be loaded as it is; the message (one line) names the file and the way out."""


def is_read(method: str, target: str | None) -> bool:
    """Whether a request only reads: DynamoDB by its target, S3 (the only REST service used) by method."""
    if target and target.startswith("DynamoDB_"):
        return target.split(".", 1)[-1] in _DYNAMODB_READS
    return method in ("GET", "HEAD", "OPTIONS")


# --------------------------------------------------------------------------------------------
# The WSGI app: moto behind one lock, changes journaled
# --------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """moto's complete answer to one request."""

    status: int
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes


INCOMPLETE_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>IncompleteBody</Code><Message>You did not '
                   b'provide the number of bytes specified by the Content-Length HTTP header</Message></Error>')


class SerializedMoto:
    """The WSGI app of the local AWS server: moto's own, one request at a time.

    ``journal`` (set by :class:`Persistence`) receives every request that changed something.
    ``request``, ``dynamodb`` and ``client`` call moto in this process and expect the caller to
    hold ``lock``.
    """

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.inner = DomainDispatcherApplication(create_backend_app)
        # moto lists its package directory to resolve the host of every request; the answer for a
        # host never changes
        self.inner.get_backend_for_host = functools.lru_cache(maxsize=512)(self.inner.get_backend_for_host)
        self.lock = threading.Lock()
        self.journal: Callable[[dict[str, Any]], None] | None = None
        self._clients: dict[tuple[str, str], Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        declared = None if environ.get("wsgi.input_terminated") else int(environ.get("CONTENT_LENGTH") or 0)
        body = _take_body(environ)
        if declared is not None and len(body) < declared:
            # the client went away mid-body (a paused upload, a dropped connection): S3 stores
            # nothing and answers 400 IncompleteBody; moto would store the truncated part
            start_response("400 Bad Request", [("Content-Type", "application/xml")])
            return [INCOMPLETE_BODY]
        with self.lock:
            if environ.get("PATH_INFO") == "/moto-api/data.json":
                answer = _model_data()
            else:
                answer = self._invoke(environ)
            if self.journal is not None and answer.status < 400 and _changes_state(environ):
                self.journal(_journal_entry(environ, body, answer))
        start_response(answer.status_line, answer.headers)
        return [answer.body]

    def _invoke(self, environ: dict[str, Any]) -> Answer:
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            started["status"], started["headers"] = status, list(headers)
            return chunks.append

        result = self.inner(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        line = started["status"]
        return Answer(int(line.split(" ", 1)[0]), line, started["headers"], b"".join(chunks))

    def request(self, method: str, url: str, headers: dict[str, str] | Iterable[tuple[str, str]],
                body: bytes | str | None = b"") -> Answer:
        """One request, in process (the caller holds ``lock``)."""
        from moto.core.request import Request

        if not urlsplit(url).scheme:
            url = "http://localhost" + (url if url.startswith("/") else "/" + url)
        items = dict(headers.items() if isinstance(headers, dict) else headers)
        environ = Request.from_primitives(method, url, items, body if body is not None else b"").environ
        parts = urlsplit(url)
        # moto reads S3 keys from the raw path (an encoded '/' must stay encoded)
        environ["RAW_URI"] = _path_and_query(parts)
        return self._invoke(environ)

    def dynamodb(self, region: str, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self.request("POST", "/", {
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": _authorization(region, "dynamodb"),
        }, json.dumps(payload).encode())
        if answer.status >= 300:
            raise RuntimeError(f"DynamoDB {operation} answered {answer.status}: {answer.body[:300]!r}")
        return json.loads(answer.body or b"{}")

    def s3(self, method: str, bucket: str, key: str | None = None, *, query: str = "", region: str = "us-east-1",
           headers: dict[str, str] | None = None, body: bytes = b"") -> Answer:
        path = f"/{bucket}" + (f"/{quote(key, safe='/~')}" if key is not None else "")
        answer = self.request(method, path + (f"?{query}" if query else ""),
                              {**(headers or {}), "Authorization": _authorization(region, "s3")}, body)
        if answer.status >= 300:
            raise RuntimeError(f"S3 {method} {path}?{query} answered {answer.status}: {answer.body[:300]!r}")
        return answer

    def client(self, service: str, region: str) -> Any:
        """A boto3 client whose requests go to moto in this process (the caller holds ``lock``)."""
        found = self._clients.get((service, region))
        if found is None:
            import boto3
            from botocore.config import Config

            found = boto3.session.Session().client(
                service, region_name=region, endpoint_url="http://localhost", aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                              request_checksum_calculation="when_required",
                              response_checksum_validation="when_required"),
            )
            found.meta.events.register("before-send", self._send_in_process)
            self._clients[(service, region)] = found
        return found

    def _send_in_process(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse, HeadersDict

        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        answer = self.request(request.method, request.url, dict(request.headers.items()), body)
        return AWSResponse(request.url, answer.status, HeadersDict(answer.headers), _RawBody(answer.body))


def _model_data() -> Answer:
    """``GET /moto-api/data.json``: every model moto tracks, with its JSON-serializable public attributes.

    moto's own version fails (500) as soon as an unfinished multipart upload has a part: the part's
    ``status`` property looks up a bucket by a name the part does not have. Here an attribute that
    cannot be read is left out, like one that cannot be serialized.
    """
    from moto.core.model_instances import model_data

    result: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for service in sorted(model_data):
        result[service] = {}
        for name in sorted(model_data[service]):
            instances = []
            for instance in getattr(model_data[service][name], "instances_tracked", []):
                shown: dict[str, Any] = {}
                for attribute in dir(instance):
                    if attribute.startswith("_"):
                        continue
                    try:
                        value = getattr(instance, attribute)
                        json.dumps(value)
                    except Exception:  # noqa: BLE001, S112 - unreadable or not JSON: not shown
                        continue
                    shown[attribute] = value
                instances.append(shown)
            result[service][name] = instances
    return Answer(200, "200 OK", [("Content-Type", "application/javascript")], json.dumps(result).encode())


class _RawBody(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def _authorization(region: str, service: str) -> str:
    # moto finds the service and region in the credential scope; it checks no signature
    return (f"AWS4-HMAC-SHA256 Credential=local/20250101/{region}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0")


def _take_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put it back as a plain stream of known length."""
    stream = environ.get("wsgi.input")
    if stream is None:
        body = b""
    elif environ.get("wsgi.input_terminated"):  # chunked: the server de-chunks until the end
        body = stream.read()
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = stream.read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)
    return body


def _changes_state(environ: dict[str, Any]) -> bool:
    if environ.get("PATH_INFO", "").startswith("/moto-api"):
        return False
    return not is_read(environ.get("REQUEST_METHOD", "GET"), environ.get("HTTP_X_AMZ_TARGET"))


def _path_and_query(parts: Any) -> str:
    """``/path?query`` of a split URL (no scheme or host)."""
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _raw_url(environ: dict[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        parts = urlsplit(raw)
        if parts.scheme:
            raw = _path_and_query(parts)
        return raw
    query = environ.get("QUERY_STRING", "")
    return quote(environ.get("PATH_INFO", "/")) + (f"?{query}" if query else "")


def _journal_entry(environ: dict[str, Any], body: bytes, answer: Answer) -> dict[str, Any]:
    """moto's recorder format (headers, method, url, body, body_encoded), plus the upload id S3 chose."""
    from moto.core.request import EnvironHeaders

    headers = {k: v for k, v in EnvironHeaders(environ) if k.lower() != "transfer-encoding"}
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    entry: dict[str, Any] = {"headers": headers, "method": environ.get("REQUEST_METHOD", "GET"),
                             "url": _raw_url(environ), "body": text, "body_encoded": encoded}
    if entry["method"] == "POST" and "uploads" in _query(entry["url"]):
        upload = _created_upload(answer.body)
        if upload:
            entry["upload_id"] = upload[2]
    return entry


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def _created_upload(xml: bytes) -> tuple[str, str, str] | None:
    """(bucket, key, upload id) from a CreateMultipartUpload answer."""
    found = {}
    for tag in ("Bucket", "Key", "UploadId"):
        match = re.search(rf"<{tag}>([^<]*)</{tag}>".encode(), xml)
        if not match:
            return None
        found[tag] = html.unescape(match.group(1).decode("utf-8"))
    return found["Bucket"], found["Key"], found["UploadId"]


# --------------------------------------------------------------------------------------------
# moto internals: the few things the AWS API cannot do
# --------------------------------------------------------------------------------------------


def _account() -> str:
    from moto.core import DEFAULT_ACCOUNT_ID

    return DEFAULT_ACCOUNT_ID


def _s3_backend() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[_account()]["aws"]


def _regions(backends: Any) -> list[str]:
    """Regions whose backend moto has created (it creates them on first use)."""
    return sorted(dict.keys(backends[_account()]))


def _rename_upload(bucket: str, new_id: str, old_id: str) -> None:
    """Give a re-created multipart upload its old id, which clients and Wisp's upload ids carry."""
    if new_id == old_id:
        return
    uploads = _s3_backend().get_bucket(bucket).multiparts
    upload = dict.pop(uploads, new_id)  # dict.pop: moto's __delitem__ would dispose of the parts
    upload.id = old_id
    uploads[old_id] = upload


def _upload_exists(upload_id: str) -> bool:
    return any(upload_id in bucket.multiparts for bucket in _s3_backend().buckets.values())


# --------------------------------------------------------------------------------------------
# Replay (journals, and recordings of earlier versions)
# --------------------------------------------------------------------------------------------


def replay(moto: SerializedMoto, entries: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Send recorded requests to moto again, in order; returns (replayed, refused by moto).

    Multipart uploads get their recorded ids back, so later parts, the completion and the clients
    that hold the ids find them. Entries without a recorded id (earlier versions) are matched by
    bucket and key when a later request names the old id.
    """
    replayed = refused = 0
    waiting: dict[tuple[str, str], str] = {}  # (bucket, key) -> id of an upload re-created without its old id
    for entry in entries:
        body: bytes | str = entry.get("body") or b""
        if entry.get("body_encoded"):
            body = base64.b64decode(body)
        method, url = entry["method"], entry["url"]
        headers = {k: v for k, v in (entry.get("headers") or {}).items() if k.lower() != "transfer-encoding"}
        old_id = (_query(url).get("uploadId") or [""])[0]
        if old_id and waiting and not _upload_exists(old_id):
            path = unquote(urlsplit(url).path)
            for (bucket, key), new_id in list(waiting.items()):
                if path == f"/{bucket}/{key}":
                    _rename_upload(bucket, new_id, old_id)
                    del waiting[(bucket, key)]
                    break
        answer = moto.request(method, url, headers, body)
        replayed += 1
        if answer.status >= 400:
            refused += 1
            continue
        if method == "POST" and "uploads" in _query(url):
            created = _created_upload(answer.body)
            if created:
                bucket, key, new_id = created
                if entry.get("upload_id"):
                    _rename_upload(bucket, new_id, entry["upload_id"])
                else:
                    waiting[(bucket, key)] = new_id
    return replayed, refused


@dataclass
class ReadResult:
    entries: list[dict[str, Any]] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # where, e.g. "line 17"
    torn_tail: bool = False  # the last entry was cut short (the process died while writing it)


def read_journal(path: Path) -> ReadResult:
    """Entries of a journal: one JSON object a line; an unterminated last line is a torn write."""
    result = ReadResult()
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # what follows the last newline: empty unless the last write was cut short
    if tail.strip():
        result.torn_tail = True
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or "method" not in entry or "url" not in entry:
                raise ValueError("not a request")
        except ValueError:
            result.damaged.append(f"line {number}")
            continue
        result.entries.append(entry)
    return result


def read_legacy_recording(path: Path) -> ReadResult:
    """Entries of moto's recorder file. It wrote each entry and its newline as two unlocked writes,
    so concurrent entries can share a line; they are read one JSON object at a time."""
    result = ReadResult()
    text = path.read_bytes().decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    position, end = 0, len(text)
    while True:
        while position < end and text[position] in " \t\r\n":
            position += 1
        if position >= end:
            break
        try:
            entry, after = decoder.raw_decode(text, position)
            if not isinstance(entry, dict) or "method" not in entry or "url" not in entry:
                raise ValueError("not a request")
            result.entries.append(entry)
            position = after
        except ValueError:
            following = text.find('{"headers"', position + 1)
            if following < 0 and "\n" not in text[position:]:
                result.torn_tail = True
            else:
                line = text.count("\n", 0, position) + 1
                result.damaged.append(f"line {line}")
            if following < 0:
                break
            position = following
    return result


# --------------------------------------------------------------------------------------------
# Snapshots: the emulator's state in AWS API terms
# --------------------------------------------------------------------------------------------


class BlobStore:
    """Object and part bytes, one file per distinct content, named by its SHA-256."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # (etag, size) -> blob name, so unchanged objects are not read again at the next snapshot
        self.known: dict[tuple[str, int], str] = {}
        # (bucket, key, etag, size, last modified) -> the object's headers, for the same reason
        self.heads: dict[tuple[str, str, str, int, str], dict[str, str]] = {}
        self.damaged: set[str] = set()  # blobs found missing or altered while loading

    def path(self, name: str) -> Path:
        return self.directory / name

    def write(self, data: bytes) -> str:
        name = hashlib.sha256(data).hexdigest()
        target = self.path(name)
        if not target.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, data)
        return name

    def read(self, name: str) -> bytes:
        """The blob's bytes; ValueError when it is missing or does not hold what was written."""
        if not re.fullmatch(r"[0-9a-f]{64}", name):
            raise ValueError(f"bad blob name {name!r}")
        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            self.damaged.add(name)
            raise ValueError(f"{self.path(name)} is missing") from None
        if hashlib.sha256(data).hexdigest() != name:
            self.damaged.add(name)
            raise ValueError(f"{self.path(name)} does not hold the bytes it was written with")
        return data

    def remove_unused(self, used: set[str]) -> None:
        if not self.directory.is_dir():
            return
        for entry in self.directory.iterdir():
            if entry.name not in used and re.fullmatch(r"[0-9a-f]{64}(\.tmp\.\d+)?", entry.name):
                entry.unlink(missing_ok=True)


def _bucket_settings() -> dict[str, tuple[Callable[[Any, str], Any], Callable[[Any, str, Any], Any]]]:
    """Bucket settings that survive a restart: how to read each one, and how to set it again."""
    return {
        "encryption": (lambda c, b: c.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"],
                       lambda c, b, v: c.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration=v)),
        "public_access_block": (
            lambda c, b: c.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"],
            lambda c, b, v: c.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration=v)),
        "lifecycle": (lambda c, b: c.get_bucket_lifecycle_configuration(Bucket=b)["Rules"],
                      lambda c, b, v: c.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": v})),
        "cors": (lambda c, b: c.get_bucket_cors(Bucket=b)["CORSRules"],
                 lambda c, b, v: c.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": v})),
        "policy": (lambda c, b: c.get_bucket_policy(Bucket=b)["Policy"],
                   lambda c, b, v: c.put_bucket_policy(Bucket=b, Policy=v)),
        "tagging": (lambda c, b: c.get_bucket_tagging(Bucket=b)["TagSet"],
                    lambda c, b, v: c.put_bucket_tagging(Bucket=b, Tagging={"TagSet": v})),
        "versioning": (lambda c, b: c.get_bucket_versioning(Bucket=b).get("Status"),
                       lambda c, b, v: c.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": v})),
    }


def _create_table_request(description: dict[str, Any], tags: list[dict[str, str]]) -> dict[str, Any]:
    """The CreateTable request that makes a table like the one DescribeTable described."""
    request: dict[str, Any] = {k: description[k] for k in ("TableName", "AttributeDefinitions", "KeySchema")}
    billing = (description.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
    request["BillingMode"] = billing

    def throughput(source: dict[str, Any]) -> dict[str, int]:
        given = source.get("ProvisionedThroughput") or {}
        return {"ReadCapacityUnits": max(1, int(given.get("ReadCapacityUnits") or 1)),
                "WriteCapacityUnits": max(1, int(given.get("WriteCapacityUnits") or 1))}

    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = throughput(description)
    indexes = []
    for index in description.get("GlobalSecondaryIndexes") or []:
        made = {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
        if billing == "PROVISIONED":
            made["ProvisionedThroughput"] = throughput(index)
        indexes.append(made)
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    local = [{k: i[k] for k in ("IndexName", "KeySchema", "Projection")} for i in description.get("LocalSecondaryIndexes") or []]
    if local:
        request["LocalSecondaryIndexes"] = local
    stream = description.get("StreamSpecification")
    if stream and stream.get("StreamEnabled"):
        request["StreamSpecification"] = stream
    sse = description.get("SSEDescription")
    if sse and sse.get("Status") == "ENABLED":
        request["SSESpecification"] = {"Enabled": True, "SSEType": "KMS",
                                        **({"KMSMasterKeyId": sse["KMSMasterKeyArn"]} if sse.get("KMSMasterKeyArn") else {})}
    if description.get("DeletionProtectionEnabled"):
        request["DeletionProtectionEnabled"] = True
    if tags:
        request["Tags"] = tags
    return request


@dataclass
class Capture:
    """A snapshot document and the blobs it needs that are not on disk yet."""

    document: dict[str, Any]
    new_blobs: dict[str, bytes]


def capture(moto: SerializedMoto, blobs: BlobStore, generation: int) -> Capture:
    """The emulator's whole state (the caller holds ``moto.lock``)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import FakeKey
    from moto.ses.models import ses_backends

    new_blobs: dict[str, bytes] = {}

    def blob_for(etag: str, size: int, read: Callable[[], bytes]) -> str:
        name = blobs.known.get((etag, size))
        if name is None or not (name in new_blobs or blobs.path(name).exists()):
            data = read()
            name = hashlib.sha256(data).hexdigest()
            if not blobs.path(name).exists():
                new_blobs[name] = data
            blobs.known[(etag, size)] = name
        return name

    dynamodb: list[dict[str, Any]] = []
    for region in _regions(dynamodb_backends):
        for name in sorted(dynamodb_backends[_account()][region].tables):
            described = moto.dynamodb(region, "DescribeTable", {"TableName": name})["Table"]
            tags = moto.dynamodb(region, "ListTagsOfResource", {"ResourceArn": described["TableArn"]}).get("Tags") or []
            ttl = moto.dynamodb(region, "DescribeTimeToLive", {"TableName": name}).get("TimeToLiveDescription") or {}
            items: list[dict[str, Any]] = []
            page: dict[str, Any] = {"TableName": name}
            while True:
                found = moto.dynamodb(region, "Scan", page)
                items.extend(found.get("Items") or [])
                if not found.get("LastEvaluatedKey"):
                    break
                page["ExclusiveStartKey"] = found["LastEvaluatedKey"]
            dynamodb.append({
                "region": region, "create": _create_table_request(described, tags),
                "ttl": ({"Enabled": True, "AttributeName": ttl["AttributeName"]}
                        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName") else None),
                "items": items,
            })

    s3: list[dict[str, Any]] = []
    backend = _s3_backend()
    for bucket_name in sorted(backend.buckets):
        bucket = backend.buckets[bucket_name]
        region = bucket.region_name
        client = moto.client("s3", region)
        settings: dict[str, Any] = {}
        for setting, (get, _put) in _bucket_settings().items():
            try:
                value = get(client, bucket_name)
            except Exception:  # noqa: BLE001 - a setting the bucket does not have
                continue
            if value:
                settings[setting] = value
        objects = []
        for name in sorted(bucket.keys.keys()):
            key = bucket.keys.get(name)
            if not isinstance(key, FakeKey):
                continue  # a delete marker: only the current version of an object is kept
            etag, modified = key.etag.strip('"'), key.last_modified.isoformat()
            identity = (bucket_name, name, etag, key.size, modified)
            headers = blobs.heads.get(identity)
            if headers is None:
                head = moto.s3("HEAD", bucket_name, name, region=region)
                headers = {k.lower(): v for k, v in head.headers
                           if k.lower() in _OBJECT_HEADERS or k.lower().startswith("x-amz-meta-")}
                blobs.heads[identity] = headers
            objects.append({
                "key": name, "size": key.size, "etag": etag, "last_modified": modified,
                "headers": headers, "blob": blob_for(etag, key.size, lambda k=key: k.value),
            })
        uploads = []
        for upload in sorted(bucket.multiparts.values(), key=lambda u: u.id):
            headers = {str(k).lower(): str(v) for k, v in (upload.metadata or {}).items()
                       if str(k).lower() not in _NOT_RESENT}
            if upload.sse_encryption:
                headers["x-amz-server-side-encryption"] = upload.sse_encryption
            if upload.kms_key_id:
                headers["x-amz-server-side-encryption-aws-kms-key-id"] = upload.kms_key_id
            if upload.storage and upload.storage != "STANDARD":
                headers["x-amz-storage-class"] = upload.storage
            if upload.tags:
                headers["x-amz-tagging"] = "&".join(f"{quote(k)}={quote(v)}" for k, v in upload.tags.items())
            parts = []
            for number in upload.partlist:
                part = upload.parts[number]
                etag = part.etag.strip('"')
                parts.append({"number": number, "size": part.size, "etag": etag,
                              "blob": blob_for(etag, part.size, lambda p=part: p.value)})
            uploads.append({"key": upload.key_name, "upload_id": upload.id, "headers": headers, "parts": parts})
        s3.append({"name": bucket_name, "region": region, "settings": settings, "objects": objects, "uploads": uploads})

    ses: list[dict[str, Any]] = []
    for region in _regions(ses_backends):
        ses_backend = ses_backends[_account()][region]
        identities = moto.client("ses", region).list_identities().get("Identities") or []
        messages = []
        for message in ses_backend.sent_messages:
            try:
                attributes = json.loads(json.dumps(vars(message)))
            except (TypeError, ValueError):
                continue  # a kind of message Wisp does not send
            messages.append({"kind": type(message).__name__, "attributes": attributes})
        if identities or messages:
            ses.append({"region": region, "identities": identities, "messages": messages,
                        "sent_count": ses_backend.sent_message_count})

    document = {"format": FORMAT, "generation": generation, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "dynamodb": dynamodb, "s3": s3, "ses": ses}
    return Capture(document, new_blobs)


@dataclass
class Restored:
    """What a start brought back, and what it could not."""

    tables: int = 0
    items: int = 0
    buckets: int = 0
    objects: int = 0
    uploads: int = 0
    messages: int = 0
    replayed: int = 0  # journal requests
    skipped: list[str] = field(default_factory=list)  # only with WISP_STATE_RECOVER=1
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def anything(self) -> bool:
        return bool(self.tables or self.buckets or self.replayed)

    def summary(self) -> str:
        return (f"{self.tables} tables with {self.items} items, {self.objects} objects, {self.uploads} unfinished "
                f"uploads, {self.messages} sent mails, {self.replayed} replayed requests, in {self.seconds:.1f} s")


def restore(moto: SerializedMoto, document: dict[str, Any], blobs: BlobStore, *, recover: bool,
            restored: Restored) -> None:
    """Make moto hold the state a snapshot describes (the caller holds ``moto.lock``).

    Without ``recover`` any failure raises (the caller turns it into a StateError); with it, what
    cannot be restored is skipped and listed in ``restored.skipped``.
    """
    from moto.ses import models as ses_models
    from moto.ses.models import ses_backends

    def attempt(what: str, action: Callable[[], None]) -> bool:
        if not recover:
            action()
            return True
        try:
            action()
            return True
        except Exception as exc:  # noqa: BLE001 - recovery keeps what it can and says what it skipped
            restored.skipped.append(f"{what} ({exc})")
            return False

    for table in document.get("dynamodb", []):
        region, create = table["region"], table["create"]
        name = create["TableName"]
        if not attempt(f"table {name}", lambda: moto.dynamodb(region, "CreateTable", create)):
            continue
        restored.tables += 1
        if table.get("ttl"):
            attempt(f"time to live of {name}", lambda: moto.dynamodb(
                region, "UpdateTimeToLive", {"TableName": name, "TimeToLiveSpecification": table["ttl"]}))
        items = table.get("items") or []
        for start in range(0, len(items), 25):
            batch = items[start:start + 25]

            def write(batch: list[dict[str, Any]] = batch) -> None:
                pending = {name: [{"PutRequest": {"Item": item}} for item in batch]}
                while pending:
                    pending = moto.dynamodb(region, "BatchWriteItem", {"RequestItems": pending}).get("UnprocessedItems") or {}

            if attempt(f"{len(batch)} items of {name}", write):
                restored.items += len(batch)

    for bucket in document.get("s3", []):
        name, region = bucket["name"], bucket["region"]
        client = moto.client("s3", region)

        def create_bucket(name: str = name, region: str = region, client: Any = client) -> None:
            kwargs: dict[str, Any] = {"Bucket": name}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            client.create_bucket(**kwargs)

        if not attempt(f"bucket {name}", create_bucket):
            continue
        restored.buckets += 1
        settings = _bucket_settings()
        for setting, value in (bucket.get("settings") or {}).items():
            put = settings[setting][1]
            attempt(f"{setting} of bucket {name}", lambda put=put, value=value: put(client, name, value))
        for obj in bucket.get("objects") or []:
            def put_object(obj: dict[str, Any] = obj) -> None:
                data = blobs.read(obj["blob"])
                moto.s3("PUT", name, obj["key"], region=region, headers=obj.get("headers") or {}, body=data)
                key = _s3_backend().get_bucket(name).keys.get(obj["key"])
                # what S3 said about the object before (a completed upload's ETag is "<md5>-<parts>")
                key._etag = obj["etag"]
                key.last_modified = datetime.datetime.fromisoformat(obj["last_modified"])
                blobs.known[(obj["etag"], obj["size"])] = obj["blob"]
                blobs.heads[(name, obj["key"], obj["etag"], obj["size"], obj["last_modified"])] = obj.get("headers") or {}

            if attempt(f"object s3://{name}/{obj['key']}", put_object):
                restored.objects += 1
        for upload in bucket.get("uploads") or []:
            def put_upload(upload: dict[str, Any] = upload) -> None:
                parts = [(part, blobs.read(part["blob"])) for part in upload.get("parts") or []]
                answer = moto.s3("POST", name, upload["key"], query="uploads", region=region,
                                 headers=upload.get("headers") or {})
                created = _created_upload(answer.body)
                assert created, "CreateMultipartUpload gave no upload id"
                _rename_upload(name, created[2], upload["upload_id"])
                for part, data in parts:
                    moto.s3("PUT", name, upload["key"], region=region, body=data,
                            query=f"partNumber={part['number']}&uploadId={quote(upload['upload_id'], safe='')}")
                    blobs.known[(part["etag"], part["size"])] = part["blob"]

            if attempt(f"unfinished upload {upload['upload_id']} of s3://{name}/{upload['key']}", put_upload):
                restored.uploads += 1

    for entry in document.get("ses", []):
        region = entry["region"]
        client = moto.client("ses", region)
        for identity in entry.get("identities") or []:
            if "@" in identity:
                attempt(f"SES identity {identity}", lambda i=identity: client.verify_email_identity(EmailAddress=i))
            else:
                attempt(f"SES identity {identity}", lambda i=identity: client.verify_domain_identity(Domain=i))
        backend = ses_backends[_account()][region]
        for message in entry.get("messages") or []:
            def keep(message: dict[str, Any] = message) -> None:
                kind = getattr(ses_models, message["kind"])
                made = kind.__new__(kind)
                vars(made).update(message["attributes"])
                backend.sent_messages.append(made)

            if attempt("a sent mail", keep):
                restored.messages += 1
        backend.sent_message_count = max(backend.sent_message_count, int(entry.get("sent_count") or 0))


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _iso_datetime(value: Any) -> str:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` so that it is either the old file or the complete new one, even after a crash."""
    temporary = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Append-only file of requests; each entry is one ``write`` of the full line (the caller holds the lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.entries = 0
        self.bytes = 0
        self.first_at: float | None = None

    def append(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view):]
        self.entries += 1
        self.bytes += len(line)
        if self.first_at is None:
            self.first_at = time.monotonic()

    def close(self) -> None:
        os.close(self._fd)


def _journal_generation(path: Path) -> int | None:
    match = re.fullmatch(r"journal-(\d+)\.jsonl", path.name)
    return int(match.group(1)) if match else None


def _how_to_recover(directory: Path, *, kept: str | None = None, aside: Path | None = None) -> str:
    kept = kept or f"damaged files are kept in {directory}/damaged-<time>/"
    return (f"start with {RECOVER_VARIABLE}=1 to load everything that can still be read ({kept}), "
            f"or move {aside or directory} aside to start empty")


class Persistence:
    """Keeps the local AWS state in ``directory`` across restarts (see the module docstring).

    ``legacy`` is the recording of earlier versions; it is replayed when no newer state exists and
    then renamed, never deleted. With ``recover``, damaged files are moved to ``damaged-<time>/``
    and everything readable is loaded; without it they stop the start with a ``StateError``.
    """

    def __init__(self, moto: SerializedMoto, directory: Path, *, legacy: Path | None = None, recover: bool = False,
                 compact_entries: int = COMPACT_ENTRIES, compact_bytes: int = COMPACT_BYTES,
                 compact_seconds: float = COMPACT_SECONDS, log: Callable[[str], None] = print) -> None:
        self.moto = moto
        self.directory = directory
        self.snapshot_path = directory / "snapshot.json"
        self.blobs = BlobStore(directory / "blobs")
        self.legacy = legacy
        self.recover = recover
        self.compact_entries, self.compact_bytes, self.compact_seconds = compact_entries, compact_bytes, compact_seconds
        self.log = log
        self.generation = 0
        self.journal: Journal | None = None
        self._compacting = threading.Lock()  # one compaction at a time
        self._stop = threading.Event()
        self._due = threading.Event()  # set when the journal reached a size limit
        self._thread: threading.Thread | None = None
        self._damaged_dir: Path | None = None
        self._journal_failed = False
        self._migrated: Path | None = None  # the legacy recording, renamed once the first snapshot holds it
        self._owner: int | None = None  # the open lock file while this process owns the directory

    # ---- start

    def load(self) -> Restored:
        """Restore the saved state into moto (before anything else talks to it)."""
        started = time.monotonic()
        restored = Restored()
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)  # it holds password hashes and token hashes
        self._take_ownership()
        try:
            with self.moto.lock:
                document = self._read_snapshot(restored)
                journals = self._journals()
                if document is not None:
                    self.generation = int(document.get("generation") or 0)
                later = self._journals_to_replay(journals, document is not None, restored)
                legacy = self.legacy if self.legacy is not None and self.legacy.exists() else None
                if document is not None:
                    self._restore_snapshot(document, restored)
                    if legacy is not None:
                        restored.notes.append(f"{legacy} (written by an earlier version) was not read: {self.snapshot_path} "
                                              "holds newer state. Delete it when you like")
                elif legacy is not None:
                    self._migrate_legacy(legacy, restored)
                for generation, path in journals:
                    if generation < self.generation:
                        path.unlink()  # already folded into the snapshot (a stop between the two steps)
                for _generation, path in later:
                    self._replay_journal(path, restored)
                self.generation = max([self.generation] + [g for g, _ in later])
        except BaseException:
            self._release_ownership()  # nothing was started; another start may try
            raise
        restored.seconds = time.monotonic() - started
        return restored

    def _take_ownership(self) -> None:
        """Two stacks journaling into one directory would corrupt it; the second one refuses to start."""
        import fcntl

        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StateError(f"{self.directory} is in use by another running stack; stop that one first, "
                             "or give this one its own WISP_STATE_DIR") from None
        self._owner = fd

    def _release_ownership(self) -> None:
        if self._owner is not None:
            os.close(self._owner)  # closing the file releases the lock
            self._owner = None

    def _read_snapshot(self, restored: Restored) -> dict[str, Any] | None:
        if not self.snapshot_path.exists():
            return None
        try:
            document = json.loads(self.snapshot_path.read_bytes())
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} snapshot")
            return document
        except ValueError as exc:
            reason = str(exc).splitlines()[0][:120]
            if not self.recover:
                raise StateError(f"the saved local AWS state {self.snapshot_path} is damaged ({reason}); "
                                 + _how_to_recover(self.directory)) from None
            kept = self._keep_damaged(self.snapshot_path)
            restored.skipped.append(f"the whole snapshot ({reason}; kept as {kept})")
            return None

    def _journals_to_replay(self, journals: list[tuple[int, Path]], has_snapshot: bool,
                            restored: Restored) -> list[tuple[int, Path]]:
        """The journals written after the snapshot, checked to continue it without a gap."""
        later = [(g, p) for g, p in journals if g >= self.generation]
        # a snapshot of generation g is followed by journal-g (and journal-g+1 when the stack
        # stopped while writing the next snapshot); the first snapshot follows journal-1
        expected = self.generation if has_snapshot else 1
        gaps = [p for i, (g, p) in enumerate(later) if g != expected + i]
        if not gaps:
            return later
        what = (f"{gaps[0]} does not continue {self.snapshot_path}" if has_snapshot
                else f"{gaps[0]} continues a snapshot that is missing ({self.snapshot_path})")
        if not self.recover:
            raise StateError(f"the saved local AWS state is inconsistent: {what}; " + _how_to_recover(self.directory))
        restored.skipped.append(f"nothing: {what}; the journals were replayed anyway")
        return later

    def _restore_snapshot(self, document: dict[str, Any], restored: Restored) -> None:
        try:
            restore(self.moto, document, self.blobs, recover=self.recover, restored=restored)
        except Exception as exc:  # noqa: BLE001 - a damaged file must not end in a traceback
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            raise StateError(f"the saved local AWS state {self.snapshot_path} could not be loaded ({reason}); "
                             + _how_to_recover(self.directory)) from None
        for name in sorted(self.blobs.damaged):
            if self.blobs.path(name).exists():
                self._keep_damaged(self.blobs.path(name))

    def _journals(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob("journal-*.jsonl"):
            generation = _journal_generation(path)
            if generation is not None:
                found.append((generation, path))
        return sorted(found)

    def _replay_journal(self, path: Path, restored: Restored) -> None:
        read = read_journal(path)
        if read.damaged:
            if not self.recover:
                raise StateError(f"the saved local AWS state {path} is damaged ({len(read.damaged)} unreadable "
                                 f"entries, first at {read.damaged[0]}); " + _how_to_recover(self.directory))
            kept = self._keep_damaged(path, copy=True)
            restored.skipped.append(f"{len(read.damaged)} unreadable entries of {path.name} (kept as {kept})")
        if read.torn_tail:
            restored.notes.append(f"the last entry of {path} was cut short when the stack was killed; that request "
                                  "had not been answered, so it was left out")
        replayed, _refused = replay(self.moto, read.entries)
        restored.replayed += replayed

    def _migrate_legacy(self, legacy: Path, restored: Restored) -> None:
        read = read_legacy_recording(legacy)
        if read.damaged and not self.recover:
            raise StateError(f"the saved local AWS state {legacy} (written by an earlier version) is damaged "
                             f"({len(read.damaged)} unreadable entries, first at {read.damaged[0]}); "
                             + _how_to_recover(self.directory, kept=f"the file is kept as {legacy.name}.migrated",
                                               aside=legacy))
        replayed, _refused = replay(self.moto, read.entries)
        restored.replayed += replayed
        self._migrated = legacy
        kept = legacy.with_name(legacy.name + ".migrated")
        if read.damaged:
            restored.skipped.append(f"{len(read.damaged)} unreadable entries of {legacy.name} (kept as {kept})")
        restored.notes.append(f"loaded {replayed} requests from {legacy} (written by an earlier version); "
                              f"it is kept as {kept} and no longer read: delete it when you like")

    def _keep_damaged(self, path: Path, *, copy: bool = False) -> Path:
        """Move (or copy) a damaged file into ``damaged-<time>/``; nothing is deleted."""
        if self._damaged_dir is None:
            self._damaged_dir = self.directory / time.strftime("damaged-%Y%m%d-%H%M%S")
            self._damaged_dir.mkdir(exist_ok=True)
        target = self._damaged_dir / path.name
        if copy:
            import shutil

            shutil.copy2(path, target)
        else:
            os.replace(path, target)
        return target

    # ---- running

    def start(self) -> None:
        """Fold what was loaded into a fresh snapshot, then journal every change and compact in the background."""
        self.compact(force=True)
        if self._migrated is not None:  # only now: until the snapshot holds its requests, it is the state
            os.replace(self._migrated, self._migrated.with_name(self._migrated.name + ".migrated"))
            self._migrated = None
        self._thread = threading.Thread(target=self._compact_when_due, name="local-aws-snapshots", daemon=True)
        self._thread.start()

    def _append(self, entry: dict[str, Any]) -> None:
        assert self.journal is not None
        try:
            self.journal.append(entry)
            if self.journal.entries >= self.compact_entries or self.journal.bytes >= self.compact_bytes:
                self._due.set()
        except OSError as exc:
            if not self._journal_failed:
                self._journal_failed = True
                self.log(f"local AWS: cannot write {self.journal.path} ({exc.strerror}); changes from now on "
                         "will not survive a restart")

    def _compact_when_due(self) -> None:
        while not self._stop.is_set():
            self._due.wait(1.0)
            self._due.clear()
            if self._stop.is_set():
                break
            try:
                self.compact_if_due()
            except Exception as exc:  # noqa: BLE001 - the journal keeps everything; try again later
                self.log(f"local AWS: could not write a snapshot ({type(exc).__name__}: {exc}); "
                         "the journal keeps every change")
                self._stop.wait(30)

    def compact_if_due(self) -> bool:
        """Compact when the journal has reached one of its limits (entries, bytes, age)."""
        journal = self.journal
        if journal is None or journal.entries == 0:
            return False
        age = time.monotonic() - (journal.first_at or time.monotonic())
        if journal.entries >= self.compact_entries or journal.bytes >= self.compact_bytes or age >= self.compact_seconds:
            return self.compact()
        return False

    def compact(self, *, force: bool = False) -> bool:
        """Write a snapshot of the current state and start a new journal; False when nothing changed."""
        with self._compacting:
            with self.moto.lock:
                if not force and (self.journal is None or self.journal.entries == 0):
                    return False
                generation = self.generation + 1
                taken = capture(self.moto, self.blobs, generation)
                old = self.journal
                self.journal = Journal(self.directory / f"journal-{generation}.jsonl")
                self.moto.journal = self._append
                self.generation = generation
                if old is not None:
                    old.close()
            # written outside the lock: requests go on, into the new journal. Until the rename the
            # old snapshot and every journal since stay valid; after it the old journals are spare.
            for name, data in taken.new_blobs.items():
                self.blobs.directory.mkdir(parents=True, exist_ok=True)
                if not self.blobs.path(name).exists():
                    _write_atomically(self.blobs.path(name), data)
            # bucket settings read through boto3 may hold datetimes (a lifecycle rule's date); botocore
            # takes them back as ISO 8601 strings
            document = json.dumps(taken.document, separators=(",", ":"), default=_iso_datetime)
            _write_atomically(self.snapshot_path, document.encode("utf-8"))
            for journal_generation, path in self._journals():
                if journal_generation < generation:
                    path.unlink(missing_ok=True)
            used = {o["blob"] for b in taken.document["s3"] for o in b["objects"]}
            used |= {p["blob"] for b in taken.document["s3"] for u in b["uploads"] for p in u["parts"]}
            self.blobs.remove_unused(used)
            self.blobs.known = {k: v for k, v in self.blobs.known.items() if v in used}
            kept = {(b["name"], o["key"], o["etag"], o["size"], o["last_modified"])
                    for b in taken.document["s3"] for o in b["objects"]}
            self.blobs.heads = {k: v for k, v in self.blobs.heads.items() if k in kept}
            return True

    def close(self, *, snapshot: bool = True) -> None:
        """Stop compacting in the background, fold the journal into a last snapshot, stop journaling.

        ``snapshot=False`` leaves the journal as a killed process would (tests use it).
        """
        self._stop.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        try:
            if snapshot:
                self.compact()
        finally:
            with self.moto.lock:
                self.moto.journal = None
                if self.journal is not None:
                    self.journal.close()
                    self.journal = None
            self._release_ownership()
